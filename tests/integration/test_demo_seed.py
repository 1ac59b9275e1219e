"""`shadow demo-seed` (compose's one-shot service): demo models registered once, traffic sent,
labels written, and it returns only when the running workers have committed everything."""

from __future__ import annotations

from typing import Any

import pytest
from worker_support import WorkerThread, read_objects

from consumers.worker import ShadowWorker
from shadow.app.demo.seed import seed_traffic
from shadow.objectstore import open_store
from shadow.registry import ModelRegistry

pytestmark = pytest.mark.integration


def test_seed_registers_once_sends_traffic_and_waits_for_the_workers(
    unique_topic: Any, unique_group: str, settings_for: Any
) -> None:
    worker_conf = {"group_id": unique_group, "flush_seconds": 1.0, "reload_seconds": 1.0}
    settings = settings_for(
        kafka={"topic": unique_topic(2)}, worker={**worker_conf, "http_port": 0}
    )
    worker = ShadowWorker(settings)
    running = WorkerThread(worker).start()
    try:
        first = seed_traffic(settings, seconds=2, tps=150, seed=7)
        again = seed_traffic(settings, seconds=1, tps=150, seed=7)  # models already there
    finally:
        running.stop()
    assert first["delivered"] > 0 and again["delivered"] > 0
    assert first["failed"] == 0 and first["live"] == "fraud@1"
    registry = ModelRegistry.from_settings(settings)
    states = {r.model_id: r.state for r in registry.list()}
    registry.close()
    assert states == {
        "fraud@1": "production",
        "fraud@2": "shadow",
        "fraud@3": "shadow",
        "fraud@4": "shadow",
    }
    store = open_store(settings.store)
    assert store.exists(first["labels_key"]) and store.exists(again["labels_key"])
    # seed_traffic returned after the commits: every sampled transaction is stored already
    # (the second run's traffic seed is the same: its transactions are the first run's first)
    tables = list(read_objects(store).values())
    stored = {t for table in tables for t in table.column("txn_id").to_pylist()}
    assert len(stored) == first["delivered"]
