"""Shared pieces of the worker integration tests (no tests here): envelopes, reading what the
worker stored, committed offsets, a small deterministic candidate, a worker on a thread."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from consumers.candidates import Candidate, CandidateSet
from consumers.worker import ShadowWorker
from shadow.envelope import LiveScore, encode, make_envelope
from shadow.errors import ModelError
from shadow.kit.synthetic import TransactionGenerator, feature_dicts
from shadow.objectstore import ObjectStore
from shadow.settings import Settings


def envelopes(n: int, seed: int = 1, offset: int = 0) -> list[tuple[bytes, bytes]]:
    """n encoded envelopes (key, value) of synthetic transactions, ids unique per seed/offset."""
    frame = TransactionGenerator(seed).batch(n)
    live = LiveScore("fraud@7", 0.2, "pass", 2.5)
    records = []
    for i, (event_time, features) in enumerate(
        zip(frame["event_time"].tolist(), feature_dicts(frame), strict=True)
    ):
        txn = f"s{seed}-{offset + i:08d}"
        records.append((txn.encode(), encode(make_envelope(txn, features, live, event_time))))
    return records


def produce(bootstrap: str, topic: str, records: list[tuple[bytes, Any]]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "acks": "all"})
    for key, value in records:
        while True:
            try:
                producer.produce(topic, value=value, key=key)
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(60) == 0


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        return {tp.partition: tp.offset for tp in consumer.committed(tps, timeout=20)}
    finally:
        consumer.close()


def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "probe"})
    try:
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=20)[1]
            for p in range(partitions)
        }
    finally:
        consumer.close()


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except KafkaException:  # the group coordinator may be moving or loading
            pass
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def all_committed(bootstrap: str, group: str, topic: str, partitions: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return committed(bootstrap, group, topic, partitions) == end_offsets(
                bootstrap, topic, partitions
            )
        except Exception:  # noqa: BLE001 - the broker may be restarting
            return False

    return check


def read_objects(store: ObjectStore, dataset: str = "predictions") -> dict[str, pa.Table]:
    """Every object of the dataset, each read whole (an unreadable one fails the test)."""
    return {key: pq.read_table(io.BytesIO(store.get(key))) for key in store.list(dataset)}


def rows(tables: list[pa.Table]) -> pa.Table:
    return pa.concat_tables([t.cast(tables[0].schema) for t in tables]) if tables else None


def pair_counts(table: pa.Table) -> dict[tuple[str, str], int]:
    """How many rows each (txn_id, model_id) has, before dedupe."""
    grouped = pa.table(
        {"txn_id": table.column("txn_id"), "model_id": table.column("model_id").cast(pa.string())}
    ).group_by(["txn_id", "model_id"])
    counts = grouped.aggregate([([], "count_all")])
    return dict(
        zip(
            zip(
                counts.column("txn_id").to_pylist(),
                counts.column("model_id").to_pylist(),
                strict=True,
            ),
            counts.column("count_all").to_pylist(),
            strict=True,
        )
    )


def assert_exactly_once(table: pa.Table, txn_ids: set[str], models: set[str]) -> int:
    """After dedupe every (txn, model) is there exactly once; returns the raw duplicates."""
    counts = pair_counts(table)
    expected = {(t, m) for t in txn_ids for m in models}
    assert set(counts) == expected, (
        f"missing {len(expected - set(counts))}, unexpected {len(set(counts) - expected)}"
    )
    return sum(counts.values()) - len(counts)


def candidate_rows(table: pa.Table, model_id: str) -> pa.Table:
    return table.filter(pc.equal(table.column("model_id").cast(pa.string()), model_id))


class AmountScorer:
    """A small deterministic candidate: score = amount / (amount + 100); can fail on purpose."""

    def __init__(self, model_id: str, fail_every: int = 0) -> None:
        self.model_id = model_id
        self.fail_every = fail_every
        self.calls = 0

    def score(self, batch: list) -> Any:
        self.calls += 1
        if self.fail_every and self.calls % self.fail_every == 0:
            raise ModelError(self.model_id, "session run failed on purpose")
        amount = np.array([float(e.features.get("amount") or 0.0) for e in batch])
        return type("Result", (), {"scores": amount / (amount + 100.0)})()

    def score_canary(self) -> float:
        return 0.5


class StaticModels:
    """A fixed shadow set of AmountScorers (the real registry is covered by test_worker_kill)."""

    def __init__(self, scorers: list[AmountScorer]) -> None:
        self.scorers = {s.model_id: s for s in scorers}
        self.reported: list[str] = []

    def shadow_ids(self) -> list[str]:
        return list(self.scorers)

    def load(self, model_id: str) -> Candidate:
        return Candidate(model_id, self.scorers[model_id], 0.5, 0.5)

    def report_failed(self, model_id: str, reason: str) -> None:
        self.reported.append(model_id)


def static_candidates(settings: Settings, *scorers: AmountScorer) -> CandidateSet:
    models = list(scorers) or [AmountScorer("amount@1")]
    return CandidateSet(StaticModels(models), settings.worker.max_model_failures, 3600)


class WorkerThread:
    """A ShadowWorker running on a thread; stop() is the graceful SIGTERM path."""

    def __init__(self, worker: ShadowWorker) -> None:
        self.worker = worker
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.worker.run()
        except BaseException as exc:  # noqa: BLE001 - surfaced by stop()
            self.error = exc

    def start(self) -> WorkerThread:
        self.thread.start()
        return self

    def stop(self, timeout: float = 60) -> None:
        self.worker.stop()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "worker did not stop"
        if self.error is not None:
            raise self.error
