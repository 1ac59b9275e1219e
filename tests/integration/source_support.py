"""Shared pieces of the topic-source integration tests (no tests here): a live service's own
records, the mapping that reads them, reading a topic to its end, and the sampled set worked
out from the README's formula alone (xxhash directly, not shadow.sampling)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import xxhash
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

MAPPING = """
txn_id: id
event_time: created_at
live:
  model_id: scoring.model
  score: scoring.score
  decision: scoring.decision
  latency_ms: scoring.took_ms
features:
  under: payload
  exclude: [label]
  fields: {country: merchant.country}
"""

JOINED_MAPPING = """
txn_id: id
event_time: created_at
features:
  under: payload
  exclude: [label]
decisions:
  txn_id: txn
  live: {model_id: model, score: score, decision: outcome}
"""


def scored_record(i: int, prefix: str = "src") -> dict[str, Any]:
    """A scored transaction as a live service of its own might publish it."""
    return {
        "id": f"{prefix}-{i:07d}",
        "created_at": 1_767_225_600_000 + i,
        "scoring": {
            "model": "fraud@7",
            "score": (i % 1000) / 1000,
            "decision": "decline" if i % 97 == 0 else "pass",
            "took_ms": 1.25,
        },
        "payload": {"amount": round(i * 0.37, 2), "mcc": "5411", "cvv": "123", "label": i % 2},
        "merchant": {"country": "DE"},
    }


def sampled(txn_ids: list[str], rate: float, salt: str) -> set[str]:
    """The README's formula: XXH64(UTF-8(salt) || UTF-8(txn_id), seed 0) >> 11
    < floor(rate * 2^53)."""
    bound = math.floor(rate * 2**53)
    return {t for t in txn_ids if xxhash.xxh64_intdigest((salt + t).encode()) >> 11 < bound}


def write_mapping(folder: Path, text: str = MAPPING) -> Path:
    path = folder / "mapping.yaml"
    path.write_text(text)
    return path


def produce_json(
    bootstrap: str,
    topic: str,
    records: list[tuple[bytes | None, Any]],
    timestamps: list[int] | None = None,
    partitions: list[int] | None = None,
) -> list[tuple[int, int]]:
    """Produce (key, value) pairs (a dict value as JSON, bytes as they are), with these Kafka
    timestamps (ms) if given; returns the (partition, offset) of each, in order."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "acks": "all"})
    where: list[tuple[int, int]] = [(-1, -1)] * len(records)

    def report(index: int) -> Any:
        def delivered(err: Any, msg: Any) -> None:
            assert err is None, err
            where[index] = (msg.partition(), msg.offset())

        return delivered

    for index, (key, value) in enumerate(records):
        data = json.dumps(value).encode() if isinstance(value, dict) else value
        while True:
            try:
                stamp = timestamps[index] if timestamps else 0
                partition = partitions[index] if partitions else -1
                producer.produce(
                    topic, data, key, partition, on_delivery=report(index), timestamp=stamp
                )
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(60) == 0
    return where


def read_all(
    bootstrap: str, topic: str, isolation: str = "read_committed", timeout_s: float = 60.0
) -> list[Any]:
    """Every record of the topic (all partitions), from the start to each partition's end as
    it is now (its high watermark); with read_committed, only committed transactions (the
    position still passes aborted records and transaction markers)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{time.monotonic_ns()}",
            "isolation.level": isolation,
            "enable.auto.commit": False,
        }
    )
    metadata = consumer.list_topics(topic, timeout=20).topics[topic]
    partitions = [TopicPartition(topic, p, 0) for p in metadata.partitions]
    ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=20)[1] for tp in partitions}
    consumer.assign(partitions)
    out: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            out.extend(m for m in consumer.consume(2000, 0.5) if m.error() is None)
            positions = consumer.position(partitions)
            if all(tp.offset >= ends[tp.partition] or ends[tp.partition] == 0 for tp in positions):
                return out
    finally:
        consumer.close()
    raise AssertionError(f"{topic} not read to its end in {timeout_s:.0f} s")


def committed_total(bootstrap: str, group: str, topic: str, partitions: int) -> int:
    """The group's committed offsets, summed. read_uncommitted: a read_committed client would
    wait while a killed process's transaction holds offsets, until that transaction ends."""
    config = {"bootstrap.servers": bootstrap, "group.id": group}
    consumer = Consumer({**config, "isolation.level": "read_uncommitted"})
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    try:
        for _ in range(30):  # a young broker's coordinator may still be loading
            try:
                return sum(max(0, tp.offset) for tp in consumer.committed(tps, timeout=20))
            except KafkaException:
                time.sleep(1)
        raise AssertionError(f"no committed offsets of {group} in 30 tries")
    finally:
        consumer.close()


def headers_of(message: Any) -> dict[str, str]:
    return {name: value.decode() for name, value in message.headers() or []}


class Spawner:
    """Starts `shadow tap from-topic` processes and kills any still running at the end (a
    failing test must leave none behind)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.started: list[subprocess.Popen] = []

    def __call__(self, config: Path, log: Path, *extra: str) -> subprocess.Popen:
        command = "from shadow.app.cli import main; main()"
        proc = subprocess.Popen(
            [sys.executable, "-c", command, "tap", "from-topic", "--config", str(config), *extra],
            cwd=self.root,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.started.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
