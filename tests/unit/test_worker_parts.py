"""Worker parts without a broker: ingest split, buffers, candidate set, dead letters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from worker_fakes import FakeMessage

from consumers.buffers import PartitionBuffer, PartitionBuffers
from consumers.candidates import Candidate, CandidateSet
from consumers.dlq import DeadLetters
from consumers.ingest import split_batch
from consumers.metrics import WorkerMetrics
from shadow.envelope import DLQ_OFFSET, DLQ_REASON, LiveScore, encode, make_envelope
from shadow.errors import DeadLetterError, EnvelopeError, ModelError, RegistryError


def _good(partition: int, offset: int) -> FakeMessage:
    envelope = make_envelope(f"t{partition}-{offset}", {"amount": 1.0}, LiveScore("live@1", 0.1))
    return FakeMessage(partition, offset, encode(envelope), envelope.txn_id.encode())


def test_split_batch_groups_by_partition_and_refuses_bad_records() -> None:
    messages = [
        FakeMessage(0, 10, b"not json", None),
        _good(0, 11),
        _good(1, 5),
        _good(0, 12),
        FakeMessage(1, 6, b"", None),
    ]
    batch = split_batch(messages, "t", 64_000)
    assert batch.consumed == 5
    assert [e.txn_id for e in batch.envelopes] == ["t0-11", "t0-12", "t1-5"]
    first, second = batch.chunks
    assert (first.partition, first.first_offset, first.last_offset, first.consumed) == (
        0,
        10,
        12,
        3,
    )
    assert (first.start, first.stop, first.offsets) == (0, 2, [11, 12])
    assert (second.partition, second.first_offset, second.last_offset) == (1, 5, 6)
    assert [(m.offset(), e.reason) for m, e in batch.refused] == [(10, "not_json"), (6, "empty")]


def test_buffer_starts_at_first_consumed_offset_even_when_dead_lettered() -> None:
    buffers = PartitionBuffers()
    buffer = buffers.for_partition(3, 40)
    buffer.add_offsets(40, 44, 5)
    buffer.add_offsets(45, 49, 5)
    assert (buffer.first_offset, buffer.commit_offset, buffer.records) == (40, 50, 10)
    assert buffers.for_partition(3, 99) is buffer
    assert buffer.due(buffer.started, flush_records=10, flush_seconds=60)
    assert not buffer.due(buffer.started, flush_records=11, flush_seconds=60)
    assert buffer.due(buffer.started + 61, flush_records=11, flush_seconds=60)


def test_failed_flush_backs_off_and_doubles_up_to_a_cap() -> None:
    buffer = PartitionBuffer(0, 0, records=1)
    delays = [buffer.failed(100.0) for _ in range(8)]
    assert delays[:3] == [0.25, 0.5, 1.0]
    assert max(delays) == 5.0
    assert not buffer.due(100.0, 1, 1)
    assert buffer.due(105.0, 1, 1)


@dataclass
class FakeResult:
    scores: Any


class FakeScorer:
    def __init__(self, model_id: str, fail_on: set[int] | None = None, garbage: bool = False):
        self.model_id = model_id
        self.fail_on = fail_on or set()
        self.garbage = garbage
        self.calls = 0
        self.probes = 0

    def score(self, envelopes: list) -> FakeResult:
        if len(envelopes) == 1:  # the single-request probe after each batch
            self.probes += 1
            return FakeResult(np.zeros(1))
        self.calls += 1
        if self.calls in self.fail_on:
            raise ModelError(self.model_id, "onnxruntime failed")
        if self.garbage:
            return FakeResult(np.full(len(envelopes), np.nan))
        return FakeResult(np.linspace(0.0, 1.0, len(envelopes)))

    def score_canary(self) -> float:
        return 0.5


class FakeSource:
    def __init__(self, scorers: dict[str, FakeScorer]) -> None:
        self.scorers = scorers
        self.ids = list(scorers)
        self.reported: list[tuple[str, str]] = []

    def shadow_ids(self) -> list[str]:
        return list(self.ids)

    def load(self, model_id: str) -> Candidate:
        return Candidate(model_id, self.scorers[model_id], 0.5, 0.5)

    def report_failed(self, model_id: str, reason: str) -> None:
        self.reported.append((model_id, reason))
        raise RegistryError("the registry is read-only in this test")


def _envelopes(n: int) -> list:
    return [make_envelope(f"t{i}", {}, LiveScore("live@1", 0.1)) for i in range(n)]


def test_failing_model_gets_errors_others_complete_and_evicted_after_n() -> None:
    source = FakeSource({"ok@1": FakeScorer("ok@1"), "bad@1": FakeScorer("bad@1", {2, 3, 4})})
    metrics = WorkerMetrics()
    models = CandidateSet(source, max_failures=3, reload_seconds=30, metrics=metrics)
    models.reload()
    first = {r.model_id: r for r in models.score(_envelopes(5))}
    assert first["bad@1"].error is None and first["ok@1"].scores is not None
    for _ in range(2):
        results = {r.model_id: r for r in models.score(_envelopes(5))}
        assert results["bad@1"].scores is None and "onnxruntime failed" in results["bad@1"].error
        assert len(results["ok@1"].scores) == 5
    assert len(models) == 2
    models.score(_envelopes(5))  # third failure in a row: unloaded, reported
    assert [c.model_id for c in models.loaded()] == ["ok@1"]
    assert source.reported == [("bad@1", "failed 3 batches in a row")]
    models.reload()  # still in the registry's shadow set: stays out
    assert [c.model_id for c in models.loaded()] == ["ok@1"]
    assert metrics.model_errors.labels("bad@1")._value.get() == 3
    assert metrics.scored_rows.labels("ok@1")._value.get() == 20


def test_a_model_scores_one_transaction_alone_every_probe_seconds() -> None:
    scorer = FakeScorer("ok@1")
    source = FakeSource({"ok@1": scorer})
    clock = [100.0]
    models = CandidateSet(
        source, max_failures=3, reload_seconds=30, probe_seconds=0.2, clock=lambda: clock[0]
    )
    models.reload()
    (result,) = models.score(_envelopes(5))
    clock[0] += 0.125
    (later,) = models.score(_envelopes(5))  # within probe_seconds: no probe
    assert scorer.probes == 1 and later.request_latency_us is None
    assert result.request_latency_us is not None and result.request_latency_us > 0
    assert result.sliced(0, 2).request_latency_us == result.request_latency_us
    assert result.sliced(2, 5).request_latency_us is None  # the probe belongs to row 0
    clock[0] += 0.125  # 0.25 s after the first probe: past probe_seconds
    (again,) = models.score(_envelopes(5))
    assert scorer.probes == 2 and again.request_latency_us is not None
    never = CandidateSet(source, max_failures=3, reload_seconds=30, probe_seconds=0)
    never.reload()
    assert never.score(_envelopes(5))[0].request_latency_us is None and scorer.probes == 2


def test_garbage_scores_are_an_error_and_reload_follows_the_shadow_set() -> None:
    source = FakeSource({"nan@1": FakeScorer("nan@1", garbage=True), "new@1": FakeScorer("new@1")})
    source.ids = ["nan@1"]
    models = CandidateSet(source, max_failures=5, reload_seconds=10)
    models.maybe_reload(now=0.0)
    (result,) = models.score(_envelopes(3))
    assert result.scores is None and "non-finite" in result.error
    source.ids = ["new@1"]
    models.maybe_reload(now=5.0)
    assert [c.model_id for c in models.loaded()] == ["nan@1"]
    models.maybe_reload(now=10.0)
    assert [c.model_id for c in models.loaded()] == ["new@1"]
    assert models.health() == {"new@1": {"ok": True, "canary": 0.5, "expected": 0.5}}


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.callbacks: list = []
        self.fail_next = False

    def produce(self, topic: str, value: Any, key: Any, headers: Any, on_delivery: Any) -> None:
        self.sent.append({"topic": topic, "value": value, "headers": dict(headers)})
        self.callbacks.append(on_delivery)

    def poll(self, _timeout: float) -> int:
        return 0

    def flush(self, _timeout: float) -> int:
        for callback in self.callbacks:
            callback("broker down" if self.fail_next else None, None)
        self.callbacks.clear()
        self.fail_next = False
        return 0


def test_dead_letters_carry_reason_and_source_and_must_be_acknowledged() -> None:
    producer = FakeProducer()
    letters = DeadLetters(producer, "t.dlq")
    letters.send("t", FakeMessage(4, 77, b"{", b"k"), EnvelopeError("not_json", "bad"))
    assert producer.sent[0]["headers"][DLQ_REASON] == b"not_json"
    assert producer.sent[0]["headers"][DLQ_OFFSET] == b"77"
    producer.fail_next = True
    with pytest.raises(DeadLetterError):
        letters.settle(4)
    assert len(producer.sent) == 2  # sent again
    letters.settle(4)  # acknowledged now
    letters.settle(5)  # nothing pending for another partition


def test_flusher_keeps_a_failed_batch_in_its_slot_and_retries_it_when_due() -> None:
    from consumers.flusher import Flusher
    from shadow.errors import StoreError

    attempts: list[int] = []

    def write(buffer: PartitionBuffer) -> None:
        attempts.append(buffer.first_offset)
        if len(attempts) == 1:
            raise StoreError("s3://b", "down")

    flusher = Flusher(write)
    buffer = PartitionBuffer(2, 100, last_offset=199, records=100)
    flusher.submit(buffer)
    assert flusher.busy(2)
    flusher.wait(2)
    ((ended, error),) = flusher.finished(0.0)
    assert ended is buffer and isinstance(error, StoreError)
    buffer.failed(10.0)  # retry at 10.25
    flusher.hold(2)
    assert flusher.finished(10.0) == [] and attempts == [100]
    assert flusher.finished(10.3) == []  # resubmitted
    _, error = flusher.wait(2)
    assert error is None and attempts == [100, 100]
    assert flusher.release(2) is buffer and not flusher.busy(2)
    flusher.close()


class ColumnScorer(FakeScorer):
    """A fake with score_columns: it records the frame each batch handed it."""

    def __init__(self, model_id: str) -> None:
        super().__init__(model_id)
        self.frames: list[Any] = []

    def score_columns(self, frame: Any) -> FakeResult:
        self.frames.append(frame)
        amounts, _ = frame.column("amount", "double")
        return FakeResult(amounts / 10.0)


def test_one_feature_frame_per_batch_is_shared_by_every_model() -> None:
    scorers = {"a@1": ColumnScorer("a@1"), "b@1": ColumnScorer("b@1"), "old@1": FakeScorer("old@1")}
    models = CandidateSet(FakeSource(scorers), max_failures=3, reload_seconds=30)
    models.reload()
    live = LiveScore("live@1", 0.1)
    envelopes = [make_envelope(f"t{i}", {"amount": float(i)}, live) for i in range(4)]
    results = {r.model_id: r for r in models.score(envelopes)}
    np.testing.assert_array_equal(results["a@1"].scores, [0.0, 0.1, 0.2, 0.3])
    np.testing.assert_array_equal(results["b@1"].scores, results["a@1"].scores)
    frame, probe = scorers["a@1"].frames  # the batch's frame, then the probe's own
    assert scorers["b@1"].frames[0] is frame and len(frame) == 4 and len(probe) == 1
    # a scorer without score_columns still gets the envelopes
    assert scorers["old@1"].calls == 1 and len(results["old@1"].scores) == 4


def test_dead_letters_mask_card_numbers_and_say_so() -> None:
    from shadow.envelope import DLQ_SCRUBBED

    producer = FakeProducer()
    letters = DeadLetters(producer, "t.dlq")
    value = b'{"event_time":1767225600009,"features":{"note":"4111 1111 1111 1111","n":{}}}'
    letters.send("t", FakeMessage(1, 5, value, b"k"), EnvelopeError("wrong_type", "nested"))
    sent = producer.sent[0]
    assert b"4111" not in sent["value"]
    assert b"1767225600009" in sent["value"]  # the envelope's time is not a card number
    assert sent["headers"][DLQ_SCRUBBED] == b"1"
    letters.send("t", FakeMessage(1, 6, b"{", b"k"), EnvelopeError("not_json", "bad"))
    assert producer.sent[1]["value"] == b"{" and DLQ_SCRUBBED not in producer.sent[1]["headers"]


def test_dead_letters_keep_the_original_when_the_card_guard_only_warns() -> None:
    producer = FakeProducer()
    letters = DeadLetters(producer, "t.dlq", scrub=False)
    value = b'{"note":"4111111111111111"}'
    letters.send("t", FakeMessage(1, 5, value, b"k"), EnvelopeError("missing_field", "x"))
    assert producer.sent[0]["value"] == value
