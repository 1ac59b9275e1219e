"""kill -9 a subprocess worker at random points during 100,000 transactions: after dedupe every
(txn_id, model_id) is there exactly once and every object is readable."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from worker_support import (
    all_committed,
    assert_exactly_once,
    committed,
    envelopes,
    produce,
    read_objects,
    rows,
    wait_until,
)

from shadow.kit.reference_models import write_tiny_model
from shadow.objectstore import open_store
from shadow.registry import ModelRegistry
from shadow.settings import load_settings

pytestmark = pytest.mark.integration

TXNS = 100_000
KILLS = 5
ROOT = Path(__file__).resolve().parents[2]


def _register_tiny_models(settings, folder: Path) -> set[str]:
    registry = ModelRegistry.from_settings(settings)
    ids = set()
    for name, kind, weight in (("tiny-cols", "columns", 1.0), ("tiny-tensor", "tensor", 0.5)):
        path = write_tiny_model(folder / f"{name}.onnx", kind, weight)
        card = registry.register(path, name, "1")
        registry.transition(card.model_id, "shadow", "test", "kill -9 test")
        ids.add(card.model_id)
    registry.close()
    return ids


def _config(tmp_path: Path, kafka_bootstrap: str, topic: str, group: str, s3_store) -> Path:
    config = {
        "kafka": {"bootstrap_servers": kafka_bootstrap, "topic": topic},
        "worker": {
            "group_id": group,
            "flush_records": 4000,
            "flush_seconds": 2.0,
            "batch_size": 1000,
            "http_port": 0,
            "worker_id": "killed",
            # a restarted worker takes its partitions back at once instead of waiting for the
            # killed one's session to expire
            "consumer_config": {"group.instance.id": "kill-test", "session.timeout.ms": "6000"},
        },
        "store": s3_store,
        "registry": {"url": f"sqlite:///{tmp_path / 'registry.db'}"},
        "log": {"level": "INFO"},
    }
    path = tmp_path / "worker.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _spawn(config: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "shadow", "worker", "--config", str(config)],
        cwd=ROOT,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_kill_9_five_times_during_100k_transactions(
    kafka_bootstrap, unique_topic, unique_group, s3_store, tmp_path: Path
) -> None:
    topic = unique_topic(3)
    config = _config(tmp_path, kafka_bootstrap, topic, unique_group, s3_store)
    settings = load_settings(config)
    models = _register_tiny_models(settings, tmp_path / "models")
    records = envelopes(TXNS, seed=21)
    # traffic keeps arriving while the worker is killed and restarted
    feeder = threading.Thread(
        target=lambda: [
            (produce(kafka_bootstrap, topic, records[i : i + 2500]), time.sleep(0.6))
            for i in range(0, TXNS, 2500)
        ],
        daemon=True,
    )
    feeder.start()
    log = tmp_path / "worker.log"
    rng = random.Random(5)
    killed_at = []
    for _ in range(KILLS):
        worker = _spawn(config, log)
        time.sleep(rng.uniform(2.0, 4.0))
        assert worker.poll() is None, log.read_text()[-2000:]
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        offsets = committed(kafka_bootstrap, unique_group, topic, 3).values()
        killed_at.append(sum(max(0, offset) for offset in offsets))
    worker = _spawn(config, log)
    feeder.join(120)
    wait_until(lambda: log.read_text().count("subscribed to") == KILLS + 1, 60, "a running worker")
    try:
        wait_until(all_committed(kafka_bootstrap, unique_group, topic, 3), 180, "all committed")
    finally:
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(60)
    assert code == 0, log.read_text()[-2000:]

    objects = read_objects(open_store(settings.store))  # every object read whole
    table = rows(list(objects.values()))
    txns = {key.decode() for key, _ in records}
    duplicates = assert_exactly_once(table, txns, models | {"fraud@7"})
    print(f"kill -9 x{KILLS} (committed at each kill: {killed_at}): {len(objects)} objects,")
    print(f"{duplicates} raw duplicate rows of {table.num_rows}")
    assert max(killed_at) < TXNS, "every kill must land while transactions are still coming"
