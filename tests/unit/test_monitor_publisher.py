"""The worker's prediction records: one per transaction, the contract's bytes, never blocking."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from consumers.publisher import MAX_ERROR_CHARS, PredictionPublisher, records_of
from shadow.envelope import (
    CandidateScore,
    LiveScore,
    PredictionRecord,
    decode_prediction,
    encode_prediction,
    make_envelope,
)
from shadow.errors import EnvelopeError
from shadow.prediction_store import ModelScores, chunk_keys, prediction_table

T0 = 1_767_225_600_000


def _chunk(n: int = 4, failing_error: str = "boom") -> Any:
    envelopes = [
        make_envelope(
            f"t{i}", {"amount": float(i)}, LiveScore("live@1", i / 10, "pass", 2.5), T0 + i
        )
        for i in range(n)
    ]
    keys = chunk_keys(envelopes, list(range(100, 100 + n)), 2, "w-1", T0 * 1000)
    results = [
        ModelScores("good@1", 0.5, np.linspace(0.0, 1.0, n), 41.5),
        ModelScores("broken@1", 0.5, None, 0.0, failing_error),
    ]
    return prediction_table(keys, envelopes, results)


class FakeProducer:
    """Our stand-in for confluent_kafka.Producer: records what is produced, can fill up."""

    def __init__(self, room: int = 1_000_000) -> None:
        self.room = room
        self.sent: list[dict[str, Any]] = []
        self.polls = 0

    def produce(self, topic: str, value: bytes, key: bytes, timestamp: int, on_delivery: Any):
        if len(self.sent) >= self.room:
            raise BufferError("Local: Queue full")
        self.sent.append({"topic": topic, "value": value, "key": key, "timestamp": timestamp})

    def poll(self, _timeout: float) -> int:
        self.polls += 1
        return 0

    def flush(self, _timeout: float) -> int:
        return 0


def test_records_of_gives_one_record_per_transaction_with_every_candidate() -> None:
    records = records_of(_chunk(4))
    assert [r.txn_id for r in records] == ["t0", "t1", "t2", "t3"]
    first = records[1]
    assert first.event_time == T0 + 1
    assert first.live == LiveScore("live@1", 0.1, "pass", pytest.approx(2.5))
    assert [c.model_id for c in first.candidates] == ["good@1", "broken@1"]
    good, broken = first.candidates
    assert good.score == pytest.approx(1 / 3)
    assert good.error is None
    assert good.latency_us == pytest.approx(41.5)
    assert broken.score is None
    assert broken.error == "boom"


def test_long_errors_are_cut_so_the_record_stays_compact() -> None:
    records = records_of(_chunk(1, failing_error="x" * 600))
    assert len(records[0].candidates[1].error or "") == MAX_ERROR_CHARS


def test_publisher_produces_keyed_records_stamped_with_event_time() -> None:
    producer = FakeProducer()
    publish = PredictionPublisher(producer, "preds")
    publish(2, _chunk(3))
    assert publish.published == 3
    assert [m["key"] for m in producer.sent] == [b"t0", b"t1", b"t2"]
    assert [m["timestamp"] for m in producer.sent] == [T0, T0 + 1, T0 + 2]
    assert {m["topic"] for m in producer.sent} == {"preds"}
    decoded = decode_prediction(producer.sent[2]["value"])
    assert decoded.candidates[0].score == pytest.approx(1.0)
    assert producer.polls == 1


def test_a_full_queue_drops_and_counts_instead_of_blocking() -> None:
    producer = FakeProducer(room=2)
    publish = PredictionPublisher(producer, "preds")
    publish(0, _chunk(5))
    assert (publish.published, publish.dropped) == (2, 3)


def test_a_table_it_cannot_read_never_raises_into_the_worker() -> None:
    import pyarrow as pa

    publish = PredictionPublisher(FakeProducer(), "preds")
    publish(0, pa.table({"x": [1]}))
    assert publish.published == 0


def test_prediction_record_round_trips_and_nan_becomes_null() -> None:
    record = PredictionRecord(
        1, "t", T0, LiveScore("live@1", 0.2), [CandidateScore("c@1", float("nan"))]
    )
    back = decode_prediction(encode_prediction(record))
    assert back.candidates[0].score is None
    assert back.candidates[0].error is None
    assert back.txn_id == "t"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"", "empty"),
        (b"{nope", "not_json"),
        (b'{"schema": 1, "txn_id": "t"}', "wrong_type"),
        (
            b'{"schema": 2, "txn_id": "t", "event_time": 1, '
            b'"live": {"model_id": "l", "score": 0.1}, "candidates": []}',
            "schema_version",
        ),
    ],
)
def test_decode_prediction_refuses_with_a_reason(value: bytes, reason: str) -> None:
    with pytest.raises(EnvelopeError) as caught:
        decode_prediction(value)
    assert caught.value.reason == reason
