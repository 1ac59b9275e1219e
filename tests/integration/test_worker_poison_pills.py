"""Poison pills against the real broker: a 5 MB value on a topic that allows 8 MB, 10,000-level
nesting, an event time in the year 33658 and features typed unlike their batch, between valid
records. The worker stays up, each pill lands in the DLQ with its reason, and every valid record
of the same batches is stored and committed."""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from worker_support import (
    WorkerThread,
    all_committed,
    assert_exactly_once,
    envelopes,
    read_objects,
    rows,
    wait_until,
)

from consumers.worker import ShadowWorker
from shadow.envelope import (
    DLQ_DETAIL,
    DLQ_OFFSET,
    DLQ_ORIGINAL_BYTES,
    DLQ_REASON,
    LiveScore,
    encode,
    make_envelope,
)
from shadow.kit.reference_models import write_tiny_model
from shadow.objectstore import open_store
from shadow.registry import ModelRegistry

pytestmark = pytest.mark.integration

TOPIC_MAX = 8 * 1024 * 1024
DAY_MS = 1_767_225_600_000
LIVE = LiveScore("fraud@7", 0.2, "pass", 1.0)
FEATURES = {"amount": 12.5, "merchant_category": "5411", "device_risk": 0.1, "ip_risk": 0.2}


def _topic(bootstrap: str, name: str) -> str:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = NewTopic(name, 1, 1, config={"max.message.bytes": str(TOPIC_MAX)})
    admin.create_topics([topic])[name].result(30)
    return name


def _pill(txn: str, **changes: object) -> tuple[bytes, bytes]:
    features = {**FEATURES, **changes}
    return txn.encode(), encode(make_envelope(txn, features, LIVE, DAY_MS))


def _pills() -> dict[str, tuple[bytes, bytes]]:
    """Each poison pill by the DLQ reason it must get."""
    deep = b"[" * 10_000 + b"]" * 10_000
    nested = encode(make_envelope("deep", {"x": "X"}, LIVE, DAY_MS)).replace(b'"X"', deep)
    big = encode(make_envelope("big", {**FEATURES, "note": "N"}, LIVE, DAY_MS))
    return {
        "oversized": (b"big", big.replace(b'"N"', b'"' + b"n" * 5_000_000 + b'"')),
        "too_deep": (b"deep", nested),
        "bad_event_time": (b"y33658", encode(make_envelope("y33658", FEATURES, LIVE, 10**15))),
        "feature_type": _pill("typed", amount="12.5"),  # a string for a float input
    }


def _dead_letters(bootstrap: str, topic: str, count: int) -> list:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "dlq-reader", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    got: list = []
    try:
        wait_until(
            lambda: bool(got.extend(consumer.consume(10, 1.0))) or len(got) >= count, 60, "the DLQ"
        )
    finally:
        consumer.close()
    return got


def test_poison_pills_go_to_the_dlq_and_their_batches_are_stored_and_committed(
    kafka_bootstrap, unique_group, settings_for, tmp_path: Path
) -> None:
    topic = _topic(kafka_bootstrap, f"pills-{unique_group}")
    settings = settings_for(
        kafka={"topic": topic},
        worker={
            "group_id": unique_group,
            "store_features": True,
            "flush_records": 500,
            "flush_seconds": 1.0,
            "batch_size": 200,
            "http_port": 0,
        },
        registry={"model_cache": str(tmp_path / "cache")},
    )
    registry = ModelRegistry.from_settings(settings)
    for name, kind in (("cols", "columns"), ("tensor", "tensor")):
        card = registry.register(write_tiny_model(tmp_path / f"{name}.onnx", kind), name, "1")
        registry.transition(card.model_id, "shadow", "test", "poison pills")
    registry.close()

    valid = envelopes(600, seed=41)
    mixed = [_pill("mcc-number", merchant_category=5411), _pill("huge", amount=1e30)]
    pills = _pills()
    records = valid[:200] + list(pills.values())[:2] + valid[200:400] + mixed
    records += list(pills.values())[2:] + valid[400:]
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "message.max.bytes": TOPIC_MAX})
    for key, value in records:
        producer.produce(topic, value=value, key=key)
    assert producer.flush(60) == 0

    worker = ShadowWorker(settings)
    running = WorkerThread(worker).start()
    wait_until(all_committed(kafka_bootstrap, unique_group, topic, 1), 120, "all committed")
    assert running.thread.is_alive() and running.error is None, "the worker died"
    running.stop()

    letters = _dead_letters(kafka_bootstrap, settings.kafka.dlq, len(pills))
    by_reason = {dict(m.headers())[DLQ_REASON].decode(): m for m in letters}
    assert set(by_reason) == set(pills), sorted(by_reason)
    big = by_reason["oversized"]
    assert dict(big.headers())[DLQ_ORIGINAL_BYTES] == str(len(pills["oversized"][1])).encode()
    assert "truncated" in dict(big.headers())[DLQ_DETAIL].decode()
    assert len(big.value()) < 1_000_000
    offsets = {int(dict(m.headers())[DLQ_OFFSET]) for m in letters}
    assert len(offsets) == len(pills)

    store = open_store(settings.store)
    table = rows(list(read_objects(store).values()))
    stored = {k.decode() for k, _ in valid + mixed}
    assert assert_exactly_once(table, stored, {"cols@1", "tensor@1", "fraud@7"}) == 0
    features = pa.concat_tables(
        [pq.read_table(io.BytesIO(store.get(k))) for k in store.list("features")],
        promote_options="permissive",
    )
    assert set(features.column("txn_id").to_pylist()) == stored
    by_txn = dict(
        zip(
            features.column("txn_id").to_pylist(),
            features.column("merchant_category").to_pylist(),
            strict=True,
        )
    )
    assert by_txn["mcc-number"] == "5411"
    print(
        f"poison pills: {len(records)} records, {len(pills)} in the DLQ, {len(stored)} stored, "
        f"0 lost, 0 worker crashes"
    )
