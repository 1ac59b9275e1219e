"""In-memory stand-ins for what surrounds a worker in unit tests (no tests here): Kafka messages,
a consumer delivering them, a DLQ producer that collects, an object store in memory, and a
candidate set of real tiny ONNX models."""

from __future__ import annotations

import io
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from consumers.candidates import Candidate, CandidateSet
from consumers.dlq import DeadLetters
from consumers.worker import ShadowWorker
from shadow.envelope import DLQ_OFFSET, DLQ_PARTITION, DLQ_REASON
from shadow.errors import StoreError
from shadow.kit.reference_models import write_tiny_model
from shadow.modelcard import card_for_file
from shadow.scorer import OnnxScorer
from shadow.settings import Settings

TOPIC = "t"


@dataclass
class FakeMessage:
    _partition: int
    _offset: int
    _value: bytes | None
    _key: bytes | None

    def error(self) -> None:
        return None

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes | None:
        return self._value

    def key(self) -> bytes | None:
        return self._key


def messages_of(records: list[tuple[int, bytes | None, bytes | None]]) -> list[FakeMessage]:
    """(partition, key, value) records -> messages with offsets counted per partition."""
    next_offset: dict[int, int] = defaultdict(int)
    out = []
    for partition, key, value in records:
        out.append(FakeMessage(partition, next_offset[partition], value, key))
        next_offset[partition] += 1
    return out


class FakeConsumer:
    """Delivers its messages in order, honours pause/resume, records commits; the first
    ``fail_commits`` commits fail as a rebalance would make them."""

    def __init__(self, messages: list[FakeMessage], fail_commits: int = 0) -> None:
        self.queue = list(messages)
        self.paused: set[int] = set()
        self.committed: dict[int, int] = {}
        self.commits = 0
        self.fail_commits = fail_commits
        self.high = defaultdict(int)
        for m in messages:
            self.high[m.partition()] = max(self.high[m.partition()], m.offset() + 1)

    def subscribe(self, _topics: list[str], **_callbacks: Any) -> None:
        pass

    def consume(self, n: int, _timeout: float) -> list[FakeMessage]:
        taken = [m for m in self.queue if m.partition() not in self.paused][:n]
        chosen = {id(m) for m in taken}
        self.queue = [m for m in self.queue if id(m) not in chosen]
        return taken

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> list[TopicPartition]:
        assert asynchronous is False
        self.commits += 1
        if self.commits <= self.fail_commits:
            raise KafkaException(KafkaError(KafkaError.REBALANCE_IN_PROGRESS))
        for tp in offsets:
            assert tp.offset >= self.committed.get(tp.partition, 0), "a commit went backwards"
            self.committed[tp.partition] = tp.offset
        return offsets

    def get_watermark_offsets(self, tp: TopicPartition, cached: bool) -> tuple[int, int]:
        return 0, self.high[tp.partition]

    def pause(self, tps: list[TopicPartition]) -> None:
        self.paused.update(tp.partition for tp in tps)

    def resume(self, tps: list[TopicPartition]) -> None:
        self.paused.difference_update(tp.partition for tp in tps)

    def close(self) -> None:
        pass


class CollectingProducer:
    """A DLQ producer that keeps what it is given; refuses values over ``max_bytes`` as
    librdkafka does, and fails the first ``fail_deliveries`` deliveries."""

    def __init__(self, max_bytes: int = 1_000_000, fail_deliveries: int = 0) -> None:
        self.max_bytes = max_bytes
        self.fail_deliveries = fail_deliveries
        self.sent: list[dict[str, Any]] = []
        self._waiting: list[tuple[Any, dict[str, Any]]] = []

    def produce(self, topic: str, value: Any, key: Any, headers: Any, on_delivery: Any) -> None:
        if len(value or b"") + len(key or b"") > self.max_bytes:
            raise KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
        self._waiting.append((on_delivery, {"value": value, "key": key, "headers": headers}))

    def poll(self, _timeout: float) -> int:
        return self.flush(0)

    def flush(self, _timeout: float) -> int:
        waiting, self._waiting = self._waiting, []
        for callback, record in waiting:
            if self.fail_deliveries > 0:
                self.fail_deliveries -= 1
                callback(KafkaError(KafkaError._MSG_TIMED_OUT), None)
            else:
                self.sent.append(record)
                callback(None, None)
        return 0

    def letters(self) -> list[dict[str, bytes]]:
        return [dict(record["headers"]) | {"value": record["value"]} for record in self.sent]

    def refused(self) -> dict[tuple[int, int], str]:
        """(partition, offset) -> reason of every record that reached the DLQ."""
        return {
            (int(h[DLQ_PARTITION]), int(h[DLQ_OFFSET])): h[DLQ_REASON].decode()
            for h in self.letters()
        }


class MemoryStore:
    """An ObjectStore in a dict; the first ``fail_puts`` puts fail as an outage would."""

    uri = "memory://"

    def __init__(self, fail_puts: int = 0) -> None:
        self.objects: dict[str, bytes] = {}
        self.puts: list[str] = []
        self.fail_puts = fail_puts

    def put(self, key: str, data: bytes) -> None:
        self.puts.append(key)
        if self.fail_puts > 0:
            self.fail_puts -= 1
            raise StoreError(self.uri, f"cannot write {key}: the store is down")
        self.objects[key] = bytes(data)

    def get(self, key: str) -> bytes:
        return self.objects[key]

    def exists(self, key: str) -> bool:
        return key in self.objects

    def list(self, prefix: str = "") -> list[str]:
        return sorted(k for k in self.objects if k.startswith(prefix))

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)

    def tables(self, dataset: str) -> list[pa.Table]:
        return [pq.read_table(io.BytesIO(self.objects[k])) for k in self.list(dataset + "/")]


class LoadedModels:
    """A fixed shadow set of already loaded scorers."""

    def __init__(self, candidates: list[Candidate]) -> None:
        self.candidates = {c.model_id: c for c in candidates}
        self.reported: list[tuple[str, str]] = []

    def shadow_ids(self) -> list[str]:
        return list(self.candidates)

    def load(self, model_id: str) -> Candidate:
        c = self.candidates[model_id]
        return Candidate(c.model_id, c.scorer, c.threshold, c.canary_expected, c.sha256)

    def report_failed(self, model_id: str, reason: str) -> None:
        self.reported.append((model_id, reason))


def tiny_candidate(folder: Path, kind: str, model_id: str, timeout_s: float = 5.0) -> Candidate:
    """A real tiny ONNX model (shadow.kit.tiny_models) as a loaded candidate."""
    name = model_id.replace("@", "-")
    path = write_tiny_model(folder / f"{name}.onnx", kind)
    canary = {"amount": 10.0, "device_risk": 0.1, "ip_risk": 0.2, "merchant_category": "5411"}
    card = card_for_file(path, model_id, canary=canary)
    scorer = OnnxScorer(card, path, timeout_s=timeout_s)
    return Candidate(model_id, scorer, 0.5, scorer.score_canary(), card.sha256)


def candidate_set(settings: Settings, candidates: list[Candidate]) -> CandidateSet:
    models = CandidateSet(
        LoadedModels(candidates), settings.worker.max_model_failures, 3600, probe_seconds=0
    )
    models.reload()
    return models


def attached_worker(
    settings: Settings,
    candidates: CandidateSet,
    store: MemoryStore,
    consumer: FakeConsumer,
    producer: CollectingProducer,
) -> ShadowWorker:
    """A worker wired to the stand-ins (start() would connect to Kafka)."""
    worker = ShadowWorker(settings, candidates, store)
    worker.attach(consumer, DeadLetters(producer, f"{TOPIC}.dlq", producer.max_bytes))
    return worker


def run_to_end(worker: ShadowWorker, consumer: FakeConsumer, seconds: float = 30.0) -> None:
    """Step until every message is consumed and nothing waits to be written or committed
    (retries back off in real time), then close."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not worker.step():
            time.sleep(0.005)
        if not consumer.queue and not worker.flusher.partitions() and not len(worker.buffers):
            break
    worker.close()
