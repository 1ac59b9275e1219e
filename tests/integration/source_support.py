"""Shared pieces of the topic-source integration tests (no tests here): a live service's own
records, the mapping that reads them, reading a topic to its end, and the sampled set worked
out from the README's formula alone (xxhash directly, not shadow.sampling)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import xxhash
from confluent_kafka import Consumer, Producer, TopicPartition

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
                producer.produce(
                    topic, value=data, key=key, on_delivery=report(index), timestamp=stamp
                )
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(60) == 0
    return where


def read_all(
    bootstrap: str, topic: str, isolation: str = "read_committed", quiet_s: float = 3.0
) -> list[Any]:
    """Every record of the topic (all partitions) from the start until nothing new comes for
    quiet_s seconds; with read_committed, only committed transactions."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{time.monotonic_ns()}",
            "isolation.level": isolation,
            "enable.auto.commit": False,
        }
    )
    metadata = consumer.list_topics(topic, timeout=20).topics[topic]
    consumer.assign([TopicPartition(topic, p, 0) for p in metadata.partitions])
    out: list[Any] = []
    last = time.monotonic()
    try:
        while time.monotonic() - last < quiet_s:
            for message in consumer.consume(2000, 0.5):
                if message.error() is None:
                    out.append(message)
                    last = time.monotonic()
    finally:
        consumer.close()
    return out


def committed_total(bootstrap: str, group: str, topic: str, partitions: int) -> int:
    """The group's committed offsets, summed. read_uncommitted: a read_committed client would
    wait while a killed process's transaction holds offsets, until that transaction ends."""
    config = {"bootstrap.servers": bootstrap, "group.id": group}
    consumer = Consumer({**config, "isolation.level": "read_uncommitted"})
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        return sum(max(0, tp.offset) for tp in consumer.committed(tps, timeout=20))
    finally:
        consumer.close()


def headers_of(message: Any) -> dict[str, str]:
    return {name: value.decode() for name, value in message.headers() or []}
