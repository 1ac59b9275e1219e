"""Replay and synthetic live traffic on a real broker: what arrives is what the hash selected."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from confluent_kafka import Consumer

from shadow.envelope import decode
from shadow.kit.live_service import SyntheticLiveService
from shadow.kit.reference_models import write_tiny_model
from shadow.objectstore import open_store
from shadow.predictions import LABEL_SCHEMA
from shadow.sampling import is_sampled
from shadow.settings import Settings

pytestmark = pytest.mark.integration


def _consume(consumer: Consumer, topic: str, expected: int, timeout: float = 60.0) -> list[Any]:
    consumer.subscribe([topic])
    messages: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(messages) < expected and time.monotonic() < deadline:
        messages += [m for m in consumer.consume(1000, timeout=0.5) if m.error() is None]
    messages += [m for m in consumer.consume(1000, timeout=1.0) if m.error() is None]
    return messages


def test_replay_command_mirrors_the_hash_selected_valid_rows(
    kafka_bootstrap: str,
    unique_topic: Callable[..., str],
    unique_group: str,
    make_consumer: Callable[..., Consumer],
    tmp_path: Path,
) -> None:
    topic = unique_topic(partitions=3)
    ids = [f"rp-{i:05d}" for i in range(3000)]
    scores = [None if i % 500 == 7 else (i % 100) / 100 for i in range(3000)]
    path = tmp_path / "history.parquet"
    pq.write_table(
        pa.table({"txn_id": ids, "live_score": scores, "amount": [float(i) for i in range(3000)]}),
        path,
    )
    summary = _replay(path, kafka_bootstrap, topic, {}, "--live-model-id", "fraud@9")
    valid = [i for i, s in zip(ids, scores, strict=True) if s is not None]
    expected = {i for i in valid if is_sampled(i, 1 / 3, "shadow")}
    assert summary["rows"] == 3000
    assert summary["malformed"] == 6
    assert summary["delivered"] == len(expected)

    messages = _consume(make_consumer(unique_group), topic, len(expected))
    assert sorted(m.key().decode() for m in messages) == sorted(expected)
    envelope = decode(messages[0].value(), key=messages[0].key())
    assert envelope.live.model_id == "fraud@9"


def test_synthetic_service_scores_offers_and_writes_labels(
    settings_for: Callable[..., Settings],
    unique_topic: Callable[..., str],
    unique_group: str,
    make_consumer: Callable[..., Consumer],
    tmp_path: Path,
) -> None:
    topic = unique_topic(partitions=3)
    settings = settings_for(kafka={"topic": topic})
    model = write_tiny_model(tmp_path / "live.onnx")
    service = SyntheticLiveService(settings, model, "tiny@live", seed=5, micro_batch=4)
    run = service.run(tps=400, seconds=2)
    summary = run.summary()
    assert summary["transactions"] == 800
    assert summary["offered"] == 800
    assert summary["delivered"] == summary["enqueued"] > 200
    assert summary["live_latency_ms_p50"] > 0

    messages = _consume(make_consumer(unique_group), topic, summary["delivered"])
    assert len(messages) == summary["delivered"]
    envelopes = [decode(m.value(), key=m.key()) for m in messages]
    assert {e.live.model_id for e in envelopes} == {"tiny@live"}
    assert all(0.0 <= e.live.score <= 1.0 and e.live.latency_ms > 0 for e in envelopes)
    assert len(envelopes[0].features) == 31

    store = open_store(settings.store)
    key = service.write_labels(store)
    labels = pq.read_table(io.BytesIO(store.get(key)))
    assert labels.schema.equals(LABEL_SCHEMA)
    assert labels.num_rows == 800
    assert {e.txn_id for e in envelopes} <= set(labels.column("txn_id").to_pylist())


def test_replay_faster_than_the_tap_is_slowed_not_dropped(
    kafka_bootstrap: str, unique_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = unique_topic(partitions=3)
    path = tmp_path / "burst.parquet"
    ids = [f"b-{i:05d}" for i in range(5000)]
    pq.write_table(pa.table({"txn_id": ids, "live_score": [0.2] * 5000}), path)
    # a hand-off queue far smaller than the file: every row must wait for room
    queue = {"SHADOW__TAP__HANDOFF_QUEUE": "10"}
    summary = _replay(path, kafka_bootstrap, topic, queue, "--sample-rate", "1")
    assert summary["dropped"] == 0
    assert summary["enqueued"] == summary["delivered"] == 5000


def _replay(path: Path, bootstrap: str, topic: str, env: dict[str, str], *args: str) -> dict:
    """`shadow tap replay PATH --json ARGS` in a subprocess against the test broker: its summary."""
    environment = {
        **os.environ,
        "SHADOW__KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "SHADOW__KAFKA__TOPIC": topic,
        **env,
    }
    command = [sys.executable, "-c", "from shadow.app.cli import main; main()", "tap", "replay"]
    done = subprocess.run(
        [*command, str(path), "--json", *args],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)
