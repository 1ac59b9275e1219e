"""Bench: `shadow tap from-topic` - source records mirrored per second, CPU per record.

    python -m bench.topic_source --json [--records N] [--joined] [--config FILE]

A source topic (3 partitions) is filled first with N scored transactions in a live service's
own JSON (~20 fields, ~600 bytes; with --joined, N requests and N decisions on two topics).
Then a TopicSource (the code `shadow tap from-topic` runs, Kafka transactions every
source.commit_interval_ms) reads them all in this process: records_per_s is source records
consumed (and committed) per second of wall time, from the first batch read to the commit of
the last record; records_per_s_with_start also counts the start (init_transactions, group join,
first fetch: start_s); cpu_us_per_record is this process's CPU time (Python and librdkafka's
threads) per record over the first span. transform_only_per_s is the same records through
sampling, mapping, redaction, encoding and the worker's decode with no Kafka at all (the
ceiling). The broker runs on the same cores: load_1m says how busy the machine was. Starts a
broker unless the settings name one; stops what it started. Prints ONE JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import bench_broker, emit
from shadow.settings import Settings, load_settings

MAPPING = """
txn_id: id
event_time: created_at
live: {model_id: scoring.model, score: scoring.score, decision: scoring.decision,
       latency_ms: scoring.took_ms}
features: {under: payload, exclude: [label, trace_id]}
"""
JOINED_MAPPING = """
txn_id: id
event_time: created_at
features: {under: payload, exclude: [label, trace_id]}
decisions:
  txn_id: txn
  live: {model_id: model, score: score, decision: outcome}
"""


def source_record(i: int) -> dict[str, Any]:
    payload: dict[str, Any] = {f"f{k}": round((i * 31 + k) % 997 * 0.37, 2) for k in range(12)}
    payload |= {"mcc": str(5000 + i % 400), "country": "DE", "channel": "web", "label": 0}
    payload |= {"card_present": i % 3 == 0, "trace_id": uuid.UUID(int=i).hex}
    return {
        "id": f"txn-{i:09d}",
        "created_at": 1_767_225_600_000 + i,
        "scoring": {
            "model": "fraud@7",
            "score": (i % 1000) / 1000,
            "decision": "pass",
            "took_ms": 2.5,
        },
        "payload": payload,
    }


def decision_record(i: int) -> dict[str, Any]:
    return {
        "txn": f"txn-{i:09d}",
        "model": "fraud@7",
        "score": (i % 1000) / 1000,
        "outcome": "pass",
    }


def fill(settings: Settings, topic: str, values: list[bytes], keys: list[bytes]) -> None:
    from confluent_kafka import Producer

    from shadow.clients import base_config, ensure_topic

    ensure_topic(settings.kafka, topic, partitions=3)
    producer = Producer(
        {
            **base_config(settings.kafka),
            "linger.ms": 50,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 500_000,
        }
    )
    for key, value in zip(keys, values, strict=True):
        while True:
            try:
                producer.produce(topic, value, key)
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(120)


def ceiling(settings: Settings, spec: Any, values: list[bytes]) -> float:
    from producers.topic_transform import SourceTransform

    transform = SourceTransform(settings, spec)
    start = time.perf_counter()
    for value in values:
        transform.mirror(value, 1)
    return len(values) / (time.perf_counter() - start)


def measure(settings: Settings, spec: Any, total: int) -> dict[str, Any]:
    from producers.topic_source import TopicSource

    source = TopicSource(settings, spec)
    started = time.perf_counter()
    source.start()
    try:
        while not source.step():  # connect, join, first fetch: reported apart
            pass
        wall, cpu = time.perf_counter(), time.process_time()
        while source.counts["consumed"] < total:
            source.step()
        source.commit()
        ended = time.perf_counter()
    finally:
        source.clients.close()
    wall, cpu = ended - wall, time.process_time() - cpu
    return {
        "seconds": round(wall, 2),
        "records_per_s": round(total / wall),
        "cpu_us_per_record": round(cpu / total * 1e6, 1),
        "records_per_s_with_start": round(total / (ended - started)),
        "start_s": round(ended - started - wall, 2),
        **source.stats(),
    }


def run(base: Settings, records: int, joined: bool, folder: Path) -> dict[str, Any]:
    from producers.topic_mapping import load_mapping

    run_id = uuid.uuid4().hex[:8]
    topics = {"source": f"bench-src-{run_id}", "decisions": f"bench-dec-{run_id}"}
    mapping = folder / "mapping.yaml"
    mapping.write_text(JOINED_MAPPING if joined else MAPPING)
    source = {
        "topic": topics["source"],
        "mapping": str(mapping),
        "group_id": f"bench-{run_id}",
        "instance_id": run_id,
        "start_at": "earliest",
        "decisions_topic": topics["decisions"] if joined else None,
    }
    kafka = {**base.kafka.model_dump(), "topic": f"bench-shadow-{run_id}", "dlq_topic": None}
    settings = load_settings(kafka=kafka, tap=base.tap.model_dump(), source=source)
    spec = load_mapping(mapping, joined)
    values = [json.dumps(source_record(i)).encode() for i in range(records)]
    keys = [f"txn-{i:09d}".encode() for i in range(records)]
    fill(settings, topics["source"], values, keys)
    total = records
    if joined:
        decisions = [json.dumps(decision_record(i)).encode() for i in range(records)]
        fill(settings, topics["decisions"], decisions, keys)
        total *= 2
    top = ceiling(settings, spec, values) if not joined else None
    load_before = os.getloadavg()[0]
    result = measure(settings, spec, total)
    return {
        "mode": "joined" if joined else "plain",
        "source_records": total,
        "sample_rate": round(settings.tap.sample_rate, 6),
        **result,
        "transform_only_per_s": round(top) if top else None,
        "load_1m_before": round(load_before, 2),
        "load_1m_after": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--joined", action="store_true", help="requests + decisions topics")
    parser.add_argument("--config", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with bench_broker(load_settings(args.config)) as settings, tempfile.TemporaryDirectory() as tmp:
        result = run(settings, args.records, args.joined, Path(tmp))
    emit(result, args.json)


if __name__ == "__main__":
    main()
