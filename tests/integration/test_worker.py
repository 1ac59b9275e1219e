"""ShadowWorker against a real broker and S3 API server: scores, Parquet, commits, DLQ, groups."""

from __future__ import annotations

import json
import time
import urllib.request

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from confluent_kafka import Consumer
from worker_support import (
    AmountScorer,
    WorkerThread,
    all_committed,
    assert_exactly_once,
    candidate_rows,
    committed,
    end_offsets,
    envelopes,
    produce,
    read_objects,
    rows,
    static_candidates,
    wait_until,
)

from consumers.http import WorkerHttp
from consumers.worker import ShadowWorker
from shadow.envelope import DLQ_OFFSET, DLQ_PARTITION, DLQ_REASON, DLQ_TOPIC
from shadow.objectstore import open_store

pytestmark = pytest.mark.integration

WORKER = {"flush_records": 1500, "flush_seconds": 1.0, "batch_size": 500, "http_port": 0}


def _settings(settings_for, topic, group, s3_store=None, tap=None, **worker):
    sections = {"kafka": {"topic": topic}, "worker": {**WORKER, "group_id": group, **worker}}
    if tap is not None:
        sections["tap"] = tap
    if s3_store is not None:
        sections["store"] = s3_store
    return settings_for(**sections)


def _get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_every_record_scored_by_every_model_stored_then_committed(
    kafka_bootstrap, unique_topic, unique_group, settings_for, s3_store
) -> None:
    topic = unique_topic(3)
    records = envelopes(6000)
    produce(kafka_bootstrap, topic, records)
    settings = _settings(settings_for, topic, unique_group, s3_store)
    flaky = AmountScorer("flaky@1", fail_every=3)
    worker = ShadowWorker(settings, static_candidates(settings, AmountScorer("amount@1"), flaky))
    http = WorkerHttp(0, worker.metrics.text, worker.health, worker.models)
    http.start()
    running = WorkerThread(worker).start()
    wait_until(all_committed(kafka_bootstrap, unique_group, topic, 3), 90, "all committed")
    status, body = _get(http.port, "/healthz")
    assert status == 200 and json.loads(body)["models"]["amount@1"]["ok"] is True
    models = {m["model_id"]: m for m in json.loads(_get(http.port, "/models")[1])}
    metrics = _get(http.port, "/metrics")[1].decode()
    running.stop()
    http.stop()

    objects = read_objects(open_store(settings.store))
    assert all(key.startswith("predictions/date=2026-01-01/") for key in objects)
    table = rows(list(objects.values()))
    txns = {key.decode() for key, _ in records}
    assert assert_exactly_once(table, txns, {"amount@1", "flaky@1", "fraud@7"}) == 0
    amount = candidate_rows(table, "amount@1")
    assert amount.column("error").null_count == amount.num_rows
    # one transaction per scored chunk is also timed alone; the live rows carry their own
    probes = amount.column("request_latency_us").drop_null()
    assert 0 < len(probes) < amount.num_rows / 10 and pc.min(probes).as_py() > 0
    live = candidate_rows(table, "fraud@7")
    assert live.column("request_latency_us").equals(live.column("latency_us"))
    assert pc.all(pc.less_equal(amount.column("score"), 1.0)).as_py()
    failed = candidate_rows(table, "flaky@1")
    errors = failed.filter(pc.is_valid(failed.column("error")))
    assert 0 < errors.num_rows < failed.num_rows
    assert errors.column("score").null_count == errors.num_rows
    assert set(errors.column("error").to_pylist()) == {
        "model flaky@1: session run failed on purpose"
    }
    assert models["flaky@1"]["errors"] >= 1 and models["amount@1"]["errors"] == 0
    assert "shadow_worker_consumed_total 6000.0" in metrics
    assert 'shadow_worker_model_errors_total{model_id="flaky@1"}' in metrics
    assert 'shadow_worker_scoring_seconds_bucket{le="0.001",model_id="amount@1"}' in metrics
    for partition in range(3):
        assert f'shadow_worker_commit_lag{{partition="{partition}",topic="{topic}"}}' in metrics


def _poison(max_bytes: int) -> list[tuple[str, bytes | None, bytes | None]]:
    """Ten kinds of bad record: (expected reason, key, value)."""
    good = {
        "schema": 1,
        "txn_id": "p",
        "event_time": 1_767_225_600_000,
        "live": {"model_id": "fraud@7", "score": 0.1},
        "features": {"amount": 1.0},
    }

    def variant(key: bytes | None = b"p", **change) -> tuple[bytes | None, bytes]:
        return key, json.dumps({**good, **change}).encode()

    missing = {k: v for k, v in good.items() if k != "live"}
    return [
        ("empty", b"p", b""),
        ("oversized", *variant(features={"pad": "x" * max_bytes})),
        ("not_json", b"p", b"{not json"),
        ("not_object", b"p", b"[1, 2, 3]"),
        ("schema_version", *variant(schema=2)),
        ("missing_field", b"p", json.dumps(missing).encode()),
        ("wrong_type", *variant(event_time="yesterday")),
        ("missing_txn_id", *variant(key=None, txn_id="")),
        ("bad_event_time", *variant(event_time=-5)),
        ("key_mismatch", *variant(key=b"someone-else")),
    ]


def test_ten_kinds_of_poison_go_to_the_dlq_and_every_good_record_is_scored(
    kafka_bootstrap, unique_topic, unique_group, settings_for
) -> None:
    topic = unique_topic(2)
    good = envelopes(400, seed=3)
    poison = _poison(4000)
    mixed: list = []
    for i, record in enumerate(good):
        mixed.append(record)
        if i % 40 == 7:
            _reason, key, value = poison[(i // 40) % len(poison)]
            mixed.append((key, value))
    produce(kafka_bootstrap, topic, mixed)
    settings = _settings(
        settings_for, topic, unique_group, tap={"max_envelope_bytes": 4000}, store_features=True
    )
    running = WorkerThread(ShadowWorker(settings, static_candidates(settings))).start()
    wait_until(all_committed(kafka_bootstrap, unique_group, topic, 2), 60, "all committed")
    running.stop()

    store = open_store(settings.store)
    objects = read_objects(store)
    table = rows(list(objects.values()))
    assert assert_exactly_once(table, {k.decode() for k, _ in good}, {"amount@1", "fraud@7"}) == 0
    features = read_objects(store, "features")
    assert {k.replace("features/", "predictions/", 1) for k in features} == set(objects)
    feature_rows = rows(list(features.values()))
    assert sorted(feature_rows.column("txn_id").to_pylist()) == sorted(k.decode() for k, _ in good)
    assert "amount" in feature_rows.column_names
    dead = _read_all(kafka_bootstrap, settings.kafka.dlq, 10)
    reasons = sorted(dict(m.headers())[DLQ_REASON].decode() for m in dead)
    assert reasons == sorted(reason for reason, _, _ in poison)
    for message in dead:
        headers = dict(message.headers())
        assert headers[DLQ_TOPIC] == topic.encode()
        assert int(headers[DLQ_PARTITION]) in (0, 1) and int(headers[DLQ_OFFSET]) >= 0
    assert sum(end_offsets(kafka_bootstrap, topic, 2).values()) == len(good) + len(poison)


def _read_all(bootstrap: str, topic: str, expected: int, timeout: float = 30) -> list:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"read-{time.time()}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    got: list = []
    deadline = time.monotonic() + timeout
    while len(got) < expected and time.monotonic() < deadline:
        got.extend(m for m in consumer.consume(100, 1.0) if m.error() is None)
    consumer.close()
    return got


def test_worker_added_then_one_stopped_mid_run_loses_nothing(
    kafka_bootstrap, unique_topic, unique_group, settings_for, s3_store
) -> None:
    topic = unique_topic(4)
    settings = _settings(settings_for, topic, unique_group, s3_store, flush_records=800)
    first_half, second_half = envelopes(8000, seed=5)[:4000], envelopes(8000, seed=5)[4000:]
    produce(kafka_bootstrap, topic, first_half)
    first_settings = settings.model_copy(
        update={"worker": settings.worker.model_copy(update={"worker_id": "first"})}
    )
    first = WorkerThread(ShadowWorker(first_settings, static_candidates(settings))).start()
    wait_until(
        lambda: sum(committed(kafka_bootstrap, unique_group, topic, 4).values()) > 0, 60, "a commit"
    )
    renamed = settings.worker.model_copy(update={"worker_id": "second"})
    second_settings = settings.model_copy(update={"worker": renamed})
    second_worker = ShadowWorker(second_settings, static_candidates(settings))
    second = WorkerThread(second_worker).start()
    produce(kafka_bootstrap, topic, second_half[:2000])
    wait_until(
        lambda: bool(second_worker.assigned),
        60,
        "rebalance",
    )
    first.stop()  # graceful: flush, commit, leave; the second takes every partition
    produce(kafka_bootstrap, topic, second_half[2000:])
    wait_until(all_committed(kafka_bootstrap, unique_group, topic, 4), 90, "all committed")
    assert second_worker.assigned == {0, 1, 2, 3}
    second.stop()

    table = rows(list(read_objects(open_store(settings.store)).values()))
    txns = {k.decode() for k, _ in first_half + second_half}
    duplicates = assert_exactly_once(table, txns, {"amount@1", "fraud@7"})
    workers = set(table.column("worker_id").cast(pa.string()).to_pylist())
    assert len(workers) == 2
    print(f"raw duplicate rows after a join and a leave: {duplicates}")
