"""Hostile input through the worker's real code, with in-memory Kafka and store stand-ins:
nothing is both lost and committed, a bad record goes to the DLQ, a bad model or store only
pauses what it must."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from worker_fakes import (
    TOPIC,
    CollectingProducer,
    FakeConsumer,
    FakeMessage,
    MemoryStore,
    attached_worker,
    candidate_set,
    messages_of,
    run_to_end,
    tiny_candidate,
)

from consumers.dlq import HEADROOM, DeadLetters
from consumers.feature_check import takes
from shadow.envelope import DLQ_DETAIL, DLQ_ORIGINAL_BYTES, DLQ_REASON, LiveScore, encode
from shadow.envelope import make_envelope as envelope
from shadow.errors import DeadLetterError, EnvelopeError
from shadow.feature_columns import concat_features, features_table
from shadow.prediction_store import chunk_keys
from shadow.settings import load_settings

LIVE = LiveScore("fraud@7", 0.2, "pass", 1.0)
DAY_MS = 1_767_225_600_000
GOOD = {"amount": 12.5, "merchant_category": "5411", "device_risk": 0.1, "ip_risk": 0.2}


def _settings(**worker: object):
    conf = {"store_features": True, "flush_records": 1000, "flush_seconds": 0.05, "batch_size": 50}
    return load_settings(kafka={"topic": TOPIC}, worker={**conf, **worker})


def _records(features: list[dict], partition: int = 0) -> list[tuple[int, bytes, bytes]]:
    out = []
    for i, f in enumerate(features):
        e = envelope(f"p{partition}-{i}", f, LIVE, DAY_MS + i)
        out.append((partition, e.txn_id.encode(), encode(e)))
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> list:
    folder = tmp_path_factory.mktemp("models")
    return [tiny_candidate(folder, "columns", "cols@1"), tiny_candidate(folder, "tensor", "tens@1")]


def _run(features: list[dict], models: list, **worker: object):
    settings = _settings(**worker)
    consumer = FakeConsumer(messages_of(_records(features)))
    store, producer = MemoryStore(), CollectingProducer()
    worker_ = attached_worker(settings, candidate_set(settings, models), store, consumer, producer)
    run_to_end(worker_, consumer)
    return consumer, store, producer


def _stored_offsets(store: MemoryStore) -> list[int]:
    rows = pa.concat_tables(store.tables("predictions"))
    live = rows.filter(pa.compute.equal(rows.column("role").cast(pa.string()), "live"))
    return sorted(live.column("kafka_offset").to_pylist())


def test_a_feature_typed_unlike_its_batch_loses_nothing_with_store_features(models) -> None:
    # issue 15 item 1: merchant_category 5411 as a number, amount 1e30 and amount 10**25 in a
    # batch of strings and small floats raised in features_table after the offsets were
    # recorded, and close() committed 7 records with no object written
    rows = [dict(GOOD) for _ in range(7)]
    rows[2]["merchant_category"] = 5411
    rows[4]["amount"] = 1e30
    rows[5]["amount"] = 2**60  # an int beyond 2^53 beside floats: text keeps it exact
    consumer, store, producer = _run(rows, models)
    assert consumer.committed == {0: 7}
    assert _stored_offsets(store) == list(range(7)) and not producer.sent
    (features,) = store.tables("features")
    assert features.column("merchant_category").to_pylist() == ["5411"] * 7
    assert features.column("amount").type == pa.string()
    assert features.column("amount").to_pylist()[4:6] == ["1e30", str(2**60)]


def test_a_value_no_model_input_can_hold_goes_to_the_dlq_and_the_rest_is_stored(models) -> None:
    rows = [dict(GOOD) for _ in range(6)]
    rows[1]["amount"] = "12.5"  # the columns and tensor models take amount as float
    rows[3]["device_risk"] = True  # a bool for a float input is 1.0: kept
    rows[4]["merchant_category"] = 54.11  # a float for a string input: not without loss
    rows[5]["ip_risk"] = 1e39  # beyond float32: the tensor model would get infinity
    consumer, store, producer = _run(rows, models)
    assert producer.refused() == {
        (0, 1): "feature_type",
        (0, 4): "feature_type",
        (0, 5): "feature_type",
    }
    assert _stored_offsets(store) == [0, 2, 3] and consumer.committed == {0: 6}
    details = [letter[DLQ_DETAIL].decode() for letter in producer.letters()]
    assert "'amount' is a string" in details[0] and "float input" in details[0]


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("float", 5, True),
        ("float", True, True),
        ("float", "5", False),
        ("float", 1e39, False),
        ("double", 1e300, True),
        ("int64", 5.0, True),
        ("int64", 5.5, False),
        ("int64", 1e19, False),
        ("string", 5411, True),
        ("string", 54.11, False),
        ("string", False, False),
        ("bool", 1, True),
        ("bool", 2, False),
        ("bool", "true", False),
        ("float", None, True),
    ],
)
def test_lossless_coercions_only(kind: str, value: object, expected: bool) -> None:
    assert takes(kind, value) is expected


def test_feature_columns_take_the_narrowest_exact_type_across_chunks() -> None:
    def chunk(rows: list[dict]):
        envelopes = [envelope(f"t{i}", r, LIVE, DAY_MS) for i, r in enumerate(rows)]
        return features_table(chunk_keys(envelopes, list(range(len(rows))), 0, "w", 0), envelopes)

    first = chunk([{"n": 1, "x": 1.5, "b": True, "s": "a", "gone": None}])
    second = chunk([{"n": 2, "x": 3, "b": 1, "s": 5411, "new": 2**60}])
    joined = concat_features([first, second])
    back = pq.read_table(io.BytesIO(_parquet(joined)))
    assert back.schema.field("n").type == pa.int64() and back.column("n").to_pylist() == [1, 2]
    assert back.column("x").to_pylist() == [1.5, 3.0]  # ints within 2^53 join floats exactly
    assert back.column("b").to_pylist() == ["true", "1"]  # bool beside int: JSON text
    assert back.column("s").to_pylist() == ["a", "5411"]
    assert back.column("new").to_pylist() == [None, 2**60]
    assert back.column("gone").to_pylist() == [None, None]


def _parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def test_a_5mb_original_goes_to_the_dlq_truncated_with_its_source() -> None:
    producer = CollectingProducer(max_bytes=1_000_000)
    letters = DeadLetters(producer, "t.dlq", 1_000_000)
    big = FakeMessage(0, 42, b"x" * 5_000_000, b"k" * 5000)
    letters.send("t", big, EnvelopeError("oversized", "5000000 bytes, the limit is 64000"))
    letters.settle(0)
    (letter,) = producer.letters()
    assert len(letter["value"]) == 1_000_000 - HEADROOM
    assert letter[DLQ_ORIGINAL_BYTES] == b"5000000" and letter[DLQ_REASON] == b"oversized"
    assert "truncated to 983616 of 5000000 bytes" in letter[DLQ_DETAIL].decode()
    assert producer.sent[0]["key"] == b"k" * 1024


def test_the_dlq_halves_what_is_still_too_large_and_keeps_what_it_cannot_send() -> None:
    producer = CollectingProducer(max_bytes=300_000, fail_deliveries=1)
    letters = DeadLetters(producer, "t.dlq", 1_000_000)  # believes it may send more
    letters.send("t", FakeMessage(1, 7, b"y" * 900_000, None), EnvelopeError("oversized", "x"))
    with pytest.raises(DeadLetterError):  # the first delivery failed: sent again, not settled
        letters.settle(1)
    letters.settle(1)
    (letter,) = producer.letters()
    assert len(letter["value"]) <= 300_000 and letter[DLQ_ORIGINAL_BYTES] == b"900000"


def test_a_dlq_that_refuses_everything_pauses_the_partition_never_kills_it(models) -> None:
    settings = _settings(flush_records=3)
    records = [*_records([dict(GOOD)] * 3), (0, b"k", b"not json")]
    consumer = FakeConsumer(messages_of(records))
    producer = CollectingProducer(fail_deliveries=3)
    store = MemoryStore()
    worker = attached_worker(settings, candidate_set(settings, models), store, consumer, producer)
    run_to_end(worker, consumer)
    assert producer.refused() == {(0, 3): "not_json"} and consumer.committed == {0: 4}
    assert len(store.puts) == len(set(store.puts)), "an object was written twice"


def test_a_failed_commit_is_retried_without_writing_the_object_again(models, caplog) -> None:
    settings = _settings(flush_records=2, batch_size=2)
    consumer = FakeConsumer(messages_of(_records([dict(GOOD)] * 4)), fail_commits=2)
    store, producer = MemoryStore(), CollectingProducer()
    worker = attached_worker(settings, candidate_set(settings, models), store, consumer, producer)
    with caplog.at_level("WARNING"):
        run_to_end(worker, consumer)
    assert consumer.committed == {0: 4} and _stored_offsets(store) == [0, 1, 2, 3]
    assert len(store.puts) == len(set(store.puts)) == 4  # predictions + features, 2 batches
    assert "stored, commit failed" in caplog.text and "flush failed" not in caplog.text
    assert worker.metrics.commit_failures._value.get() == 2


def test_a_store_outage_pauses_retries_and_commits_only_after_the_write(models) -> None:
    settings = _settings(flush_records=2)
    consumer = FakeConsumer(messages_of(_records([dict(GOOD)] * 4)))
    store, producer = MemoryStore(fail_puts=2), CollectingProducer()
    worker = attached_worker(settings, candidate_set(settings, models), store, consumer, producer)
    run_to_end(worker, consumer)
    assert consumer.committed == {0: 4} and _stored_offsets(store) == [0, 1, 2, 3]


def test_a_runaway_model_is_ended_at_its_deadline_others_score_and_it_is_unloaded(
    models, tmp_path: Path
) -> None:
    runaway = tiny_candidate(tmp_path, "runaway", "loop@1", timeout_s=0.3)
    settings = _settings(max_model_failures=2, batch_size=2, flush_records=2)
    candidates = candidate_set(settings, [*models, runaway])
    rows = [{**GOOD, "amount": 1e12} for _ in range(4)]  # ~1.5 us a trip: weeks of looping
    consumer = FakeConsumer(messages_of(_records(rows)))
    store, producer = MemoryStore(), CollectingProducer()
    worker = attached_worker(settings, candidates, store, consumer, producer)
    run_to_end(worker, consumer)
    assert consumer.committed == {0: 4}
    table = pa.concat_tables(store.tables("predictions"))
    by_model = {}
    for model, error in zip(
        table.column("model_id").cast(pa.string()).to_pylist(),
        table.column("error").to_pylist(),
        strict=True,
    ):
        by_model.setdefault(model, []).append(error)
    assert by_model["cols@1"] == [None] * 4 and by_model["tens@1"] == [None] * 4
    assert all("worker.model_timeout_ms" in e for e in by_model["loop@1"])
    assert len(by_model["loop@1"]) == 4  # two batches of 2, then it was unloaded
    assert [m.model_id for m in candidates.loaded()] == ["cols@1", "tens@1"]
    ((model_id, reason),) = candidates.source.reported
    assert model_id == "loop@1" and "overran worker.model_timeout_ms" in reason
    assert worker.metrics.model_timeouts.labels("loop@1")._value.get() == 2
    assert np.isclose(runaway.scorer.score_canary(), runaway.canary_expected)


def test_records_at_the_edges_never_reach_a_stored_row(models) -> None:
    hostile = [
        (0, b"a", b'{"schema":1,"txn_id":"a","event_time":1e15}'),  # a float: wrong_type
        (0, b"b", encode(envelope("b", GOOD, LIVE, 10**15))),  # the year 33658
        (0, b"c", encode(envelope("c", GOOD, LIVE, 1_767_225_600))),  # seconds, not ms
        (0, b"d", b'{"features":' + b"[" * 10_000 + b"]" * 10_000 + b"}"),
        (0, b"e", encode(envelope("e", GOOD, LIVE, DAY_MS))),
    ]
    consumer = FakeConsumer(messages_of(hostile))
    store, producer = MemoryStore(), CollectingProducer()
    settings = _settings()
    worker = attached_worker(settings, candidate_set(settings, models), store, consumer, producer)
    run_to_end(worker, consumer)
    assert producer.refused() == {
        (0, 0): "wrong_type",
        (0, 1): "bad_event_time",
        (0, 2): "bad_event_time",
        (0, 3): "too_deep",
    }
    assert _stored_offsets(store) == [4] and consumer.committed == {0: 5}
    (table,) = store.tables("predictions")
    assert {t.year for t in table.column("event_time").to_pylist()} == {2026}


def test_a_gap_one_model_answers_nan_for_is_an_error_row_not_a_failed_batch(models) -> None:
    # amount null reaches the models as NaN and their scores are NaN for that row only: once,
    # that failed the model's whole batch, and a few such records unloaded it
    rows = [dict(GOOD) for _ in range(4)]
    rows[1]["amount"] = None
    consumer, store, _ = _run(rows, models, max_model_failures=1)
    table = pa.concat_tables(store.tables("predictions"))
    cols = table.filter(pa.compute.equal(table.column("model_id").cast(pa.string()), "cols@1"))
    assert cols.column("kafka_offset").to_pylist() == [0, 1, 2, 3]
    assert [e is None for e in cols.column("error").to_pylist()] == [True, False, True, True]
    assert cols.column("score").null_count == 1 and consumer.committed == {0: 4}
    assert all(c.failures_in_row == 0 for c in models)
