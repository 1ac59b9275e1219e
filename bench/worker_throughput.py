"""Bench: the shadow worker against its ceiling and a naive consumer, same run, same topic.

    python -m bench.worker_throughput --json [--txns N] [--config FILE]

One topic is pre-filled with N encoded envelopes (default 300,000); the reference models lr, gbdt
and mlp are registered in shadow. Then ``--rounds`` times (default 3, medians reported, every
round's figure listed as runs_*):

- ceiling_tps: the worker's own work on the same bytes in one process, no Kafka, no network:
  decode and validate (decode_many), check feature types, score (3 models), build the rows,
  Parquet-encode; ceiling_cpu_us_per_txn is its CPU time per transaction;
- worker_tps: a ShadowWorker (a new group each round) reading the topic and putting objects on
  the S3 API server, from its first record to its last object committed; cpu_us_per_txn is this
  process's CPU time over that span (every thread: the consumer's, librdkafka's, the flusher's);

and once:

- naive_tps: one message at a time, each model called per message, committed synchronously
  after each (the straightforward at-least-once loop); measured on a prefix of the
  topic (``--naive`` records, default 3,000) and reported as a rate; the same loop with
  librdkafka's auto commit instead is reported too (naive_autocommit_tps);
- freshness_p99_s: a live phase after the last round's backlog: transactions produced at
  ``--live-tps`` for ``--live-seconds`` with event_time = produce time; freshness = object
  visible - event time;
- p99_flush_s: Parquet encode + put of one partition batch (median over rounds).

``--processes 1,2`` runs the scaling mode instead (bench.worker_scaling).

Starts a broker and an S3 API server unless the settings name existing ones; stops what it
started. Prints ONE JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

MODELS = ("lr", "gbdt", "mlp")
PARTITIONS = 3
BENCH_WORKER = {"flush_records": 20_000, "flush_seconds": 2.0, "batch_size": 2000}


@contextlib.contextmanager
def services(settings: Any, tmp: Path) -> Iterator[Any]:
    """The settings, pointed at a broker and an S3 bucket started here when none is named."""
    from shadow.kit.dev.kafka import LocalKafka
    from shadow.kit.dev.s3 import LocalS3

    started: list[Any] = []
    kafka, store = settings.kafka.model_dump(), settings.store.model_dump()
    try:
        if not settings.kafka.bootstrap_servers:
            broker = LocalKafka(settings.kafka.dev_version, settings.kafka.dev_home, tmp / "kafka")
            kafka["bootstrap_servers"] = broker.start().bootstrap
            started.append(broker)
        if not settings.store.uri.startswith("s3://"):
            s3 = LocalS3(Path(), tmp / "s3")
            store = {"uri": "s3://bench/shadow", "endpoint_url": s3.start().bootstrap}
            store |= {"access_key_id": "bench", "secret_access_key": "bench"}
            started.append(s3)
        yield _bench_settings(settings, kafka, store, tmp)
    finally:
        for service in reversed(started):
            service.stop()


def _bench_settings(settings: Any, kafka: dict, store: dict, tmp: Path) -> Any:
    from shadow.objectstore import S3Store
    from shadow.settings import load_settings

    topic = f"bench-{int(time.time())}"
    kafka = {**kafka, "topic": topic, "dlq_topic": None}
    worker = {**settings.worker.model_dump(), **BENCH_WORKER, "group_id": topic, "http_port": 0}
    registry = {"url": f"sqlite:///{tmp / 'registry.db'}", "model_cache": str(tmp / "cache")}
    out = load_settings(kafka=kafka, store=store, worker=worker, registry=registry)
    if out.store.uri.startswith("s3://"):
        S3Store(out.store).create_bucket()
    return out


def register_models(settings: Any) -> None:
    from shadow.kit.reference_models import build_reference_models
    from shadow.registry import ModelRegistry

    built = build_reference_models()
    registry = ModelRegistry.from_settings(settings)
    for name in MODELS:
        card = registry.register(built[name].path, name, "bench", threshold=0.5, **built[name].info)
        registry.transition(card.model_id, "shadow", "bench", "worker throughput bench")
    registry.close()


def encoded(n: int, seed: int = 1) -> list[tuple[bytes, bytes]]:
    from shadow.envelope import LiveScore, encode, make_envelope
    from shadow.kit.synthetic import TransactionGenerator, feature_dicts

    frame = TransactionGenerator(seed).batch(n)
    live = LiveScore("fraud@7", 0.2, "pass", 2.5)
    out = []
    times = frame["event_time"].tolist()
    for txn, when, features in zip(frame["txn_id"], times, feature_dicts(frame), strict=True):
        out.append((txn.encode(), encode(make_envelope(txn, features, live, when))))
    return out


def produce(settings: Any, records: list[tuple[bytes, bytes]]) -> None:
    from confluent_kafka import Producer

    from shadow.clients import base_config

    producer = Producer({**base_config(settings.kafka), "linger.ms": 50, "acks": "all"})
    for key, value in records:
        while True:
            try:
                producer.produce(settings.kafka.topic, value, key)
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(60)


def candidates(settings: Any) -> Any:
    from consumers.candidates import CandidateSet
    from consumers.registry_source import RegistryModels

    models = CandidateSet(RegistryModels(settings), 5, 3600)
    models.reload()
    return models


def ceiling(settings: Any, records: list[tuple[bytes, bytes]]) -> tuple[float, float]:
    """The worker's own work on the same bytes in one process, no Kafka, no network: decode and
    validate the batch, check feature types, score, build the rows, Parquet-encode every
    flush_records. Returns (txn/s of wall time, CPU us per txn of this process)."""
    import pyarrow as pa

    from consumers.buffers import PartitionBuffers
    from shadow.envelope import decode_many
    from shadow.prediction_store import chunk_keys, parquet_bytes, prediction_table
    from shadow.scorer import FeatureFrame

    models, batch, flush = candidates(settings), BENCH_WORKER["batch_size"], 20_000
    buffers = PartitionBuffers()
    started, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(records), batch):
        part = records[start : start + batch]
        envelopes = decode_many([v for _, v in part], [k for k, _ in part]).items
        frame = FeatureFrame.of(envelopes)
        models.check(frame)
        results = models.score(envelopes, frame)
        offsets = list(range(start, start + len(part)))
        keys = chunk_keys(envelopes, offsets, 0, "bench", time.time_ns() // 1000)
        buffer = buffers.for_partition(0, start)
        buffer.add_offsets(start, offsets[-1], len(part))
        buffer.add_rows(prediction_table(keys, envelopes, results), None, 0)
        if buffer.records >= flush or start + batch >= len(records):
            parquet_bytes(pa.concat_tables(buffers.pop(0).tables))
    cpu = time.process_time() - cpu
    return len(records) / (time.perf_counter() - started), cpu / len(records) * 1e6


class TimedWrites:
    """Wraps the worker's writer: flush durations, and freshness of live-phase records."""

    def __init__(self, worker: Any) -> None:
        self.inner = worker.writer.write
        self.flushes: list[float] = []
        self.freshness: list[np.ndarray] = []
        self.live_after_ms: int | None = None
        worker.writer.write = self.write

    def write(self, partition: int, first: int, first_ms: int, tables: Any, features: Any) -> str:
        began = time.perf_counter()
        key = self.inner(partition, first, first_ms, tables, features)
        self.flushes.append(time.perf_counter() - began)
        if self.live_after_ms is not None:
            visible = time.time_ns() / 1e6
            event = np.concatenate(
                [t.column("event_time").to_numpy().astype(np.int64) for t in tables]
            )
            event = np.unique(event[event >= self.live_after_ms])
            self.freshness.append((visible - event) / 1000.0)
        return key


def run_worker(settings: Any, n: int, live: tuple[float, float] | None) -> dict[str, float]:
    """The real worker over the backlog (timed: wall time, and this process's CPU time, which
    holds the worker's every thread: librdkafka's, the flusher's), then a live phase for
    freshness (unless ``live`` is None)."""
    from consumers.worker import ShadowWorker

    worker = ShadowWorker(settings)
    timed = TimedWrites(worker)
    worker.start()
    began, cpu = time.perf_counter(), time.process_time()
    while worker.metrics.consumed._value.get() == 0:
        # the clocks start with the consume() that gets records
        began, cpu = time.perf_counter(), time.process_time()
        worker.step()
    while worker.metrics.consumed._value.get() < n:
        worker.step()
    worker.drain()
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    out = {"worker_tps": n / seconds, "cpu_us_per_txn": cpu / n * 1e6}
    out["p99_flush_s"] = float(np.percentile(timed.flushes, 99))
    if live is not None:
        timed.live_after_ms = time.time_ns() // 1_000_000
        out["live_txns"] = _live_phase(worker, settings, *live)
        freshness = np.concatenate(timed.freshness) if timed.freshness else np.array([np.nan])
        out["freshness_p99_s"] = float(np.percentile(freshness, 99))
    worker.close()
    return out


def _live_phase(worker: Any, settings: Any, tps: float, seconds: float) -> int:
    total = int(tps * seconds)
    records = encoded(total, seed=2)
    target = worker.metrics.consumed._value.get() + total

    def feed() -> None:
        from shadow.envelope import decode, encode

        step = max(1, int(tps / 10))
        for i in range(0, total, step):
            fresh = [(k, encode(_now(decode(v, k)))) for k, v in records[i : i + step]]
            produce(settings, fresh)
            time.sleep(0.1)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    while (
        worker.metrics.consumed._value.get() < target
        or worker.buffers.all()
        or worker.flusher.partitions()
    ):
        worker.step()
    feeder.join()
    return total


def _now(envelope: Any) -> Any:
    import msgspec

    return msgspec.structs.replace(envelope, event_time=time.time_ns() // 1_000_000)


def naive(settings: Any, limit: int, commit_each: bool) -> float:
    """One message at a time, every model called per message, rows written at the end: txn/s.

    ``commit_each``: the straightforward at-least-once loop (poll, score, commit synchronously);
    else librdkafka's auto commit (which can lose messages on a crash).
    """
    import pyarrow as pa
    from confluent_kafka import Consumer

    from shadow.clients import base_config
    from shadow.envelope import decode
    from shadow.prediction_store import parquet_bytes

    models = candidates(settings)
    group = f"naive-{commit_each}"
    config = {**base_config(settings.kafka), "group.id": group, "auto.offset.reset": "earliest"}
    consumer = Consumer({**config, "enable.auto.commit": not commit_each})
    consumer.subscribe([settings.kafka.topic])
    rows: list[dict[str, Any]] = []
    done, began = 0, None
    while done < limit:
        message = consumer.poll(1.0)
        if message is None or message.error():
            continue
        began = began or time.perf_counter()
        envelope = decode(message.value(), message.key())
        for model in models.loaded():
            score = float(model.scorer.score([envelope]).scores[0])
            rows.append({"txn_id": envelope.txn_id, "model_id": model.model_id, "score": score})
        if commit_each:
            consumer.commit(message, asynchronous=False)
        done += 1
    parquet_bytes(pa.Table.from_pylist(rows))
    seconds = time.perf_counter() - (began or time.perf_counter())
    consumer.close()
    return done / seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.worker_throughput")
    parser.add_argument("--json", action="store_true", help="print one JSON line (always)")
    parser.add_argument("--txns", type=int, default=None, help="300,000; 250,000 when scaling")
    parser.add_argument("--rounds", type=int, default=3, help="ceiling + worker rounds")
    parser.add_argument("--naive", type=int, default=3000)
    parser.add_argument("--live-tps", type=float, default=2000)
    parser.add_argument("--live-seconds", type=float, default=10)
    parser.add_argument("--processes", default=None, help="e.g. 1,2: the scaling mode")
    parser.add_argument("--partitions", type=int, default=4, help="topic of the scaling mode")
    parser.add_argument(
        "--consumer-config", default="{}", help="scaling mode: JSON of worker.consumer_config"
    )
    parser.add_argument("--config", default=None)
    args = parser.parse_args(argv)
    args.txns = args.txns or (250_000 if args.processes else 300_000)
    if args.processes:
        from bench.worker_scaling import scaling

        result = scaling(args)
    else:
        result = throughput(args)
    print(json.dumps(result))


def throughput(args: argparse.Namespace) -> dict[str, Any]:
    """Rounds of (ceiling, worker) on the same topic, a new group each round; medians."""
    from shadow.clients import ensure_topic
    from shadow.settings import load_settings

    rounds: list[dict[str, float]] = []
    with (
        tempfile.TemporaryDirectory(prefix="shadow-bench-") as tmp,
        services(load_settings(args.config), Path(tmp)) as settings,
    ):
        register_models(settings)
        records = encoded(args.txns)
        ensure_topic(settings.kafka, settings.kafka.topic, PARTITIONS)
        produce(settings, records)
        for i in range(args.rounds):
            ceiling_tps, ceiling_cpu = ceiling(settings, records)
            last = i == args.rounds - 1
            group = _in_group(settings, f"{settings.worker.group_id}-{i}")
            live = (args.live_tps, args.live_seconds) if last else None
            worker = run_worker(group, args.txns, live)
            rounds.append(
                worker | {"ceiling_tps": ceiling_tps, "ceiling_cpu_us_per_txn": ceiling_cpu}
            )
        naive_tps = naive(settings, args.naive, commit_each=True)
        naive_auto_tps = naive(settings, args.naive, commit_each=False)
    return _summary(args, rounds, naive_tps, naive_auto_tps)


def _in_group(settings: Any, group_id: str) -> Any:
    worker = settings.worker.model_copy(update={"group_id": group_id})
    return settings.model_copy(update={"worker": worker})


def _summary(
    args: argparse.Namespace, rounds: list[dict[str, float]], naive_tps: float, naive_auto: float
) -> dict[str, Any]:
    def median(name: str) -> float:
        return float(np.median([r[name] for r in rounds]))

    ratios = [r["worker_tps"] / r["ceiling_tps"] for r in rounds]
    worker_tps = median("worker_tps")
    return {
        "txns": args.txns,
        "models": len(MODELS),
        "rounds": len(rounds),
        "worker_tps": round(worker_tps),
        "ceiling_tps": round(median("ceiling_tps")),
        "ratio_ceiling": round(float(np.median(ratios)), 3),
        "cpu_us_per_txn": round(median("cpu_us_per_txn"), 2),
        "ceiling_cpu_us_per_txn": round(median("ceiling_cpu_us_per_txn"), 2),
        "runs_worker_tps": [round(r["worker_tps"]) for r in rounds],
        "runs_ceiling_tps": [round(r["ceiling_tps"]) for r in rounds],
        "runs_ratio_ceiling": [round(x, 3) for x in ratios],
        "runs_cpu_us_per_txn": [round(r["cpu_us_per_txn"], 2) for r in rounds],
        "runs_ceiling_cpu_us_per_txn": [round(r["ceiling_cpu_us_per_txn"], 2) for r in rounds],
        "naive_tps": round(naive_tps, 1),
        "ratio_naive": round(worker_tps / naive_tps, 1),
        "p99_flush_s": round(median("p99_flush_s"), 3),
        "freshness_p99_s": round(rounds[-1]["freshness_p99_s"], 3),
        "naive_txns": args.naive,
        "naive_autocommit_tps": round(naive_auto, 1),
        "ratio_naive_autocommit": round(worker_tps / naive_auto, 1),
        "live_txns": rounds[-1]["live_txns"],
        "flush_seconds": BENCH_WORKER["flush_seconds"],
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "note": "medians over rounds (ceiling then worker, a new group each); cpu_us_per_txn: "
        "this process's CPU time (every thread) over the backlog; naive: poll one, score each "
        "model, commit sync, on the first naive_txns records, reported as a rate",
    }


if __name__ == "__main__":
    main()
