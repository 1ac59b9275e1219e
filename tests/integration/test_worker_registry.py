"""The worker with the real registry and ONNX models: hot reload, canary health, exact scores."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from worker_support import WorkerThread, all_committed, envelopes, produce, wait_until

from consumers.http import WorkerHttp
from consumers.worker import ShadowWorker
from shadow.dataset import read_predictions
from shadow.envelope import decode
from shadow.kit.reference_models import write_tiny_model
from shadow.objectstore import open_store
from shadow.registry import ModelRegistry
from shadow.scorer import OnnxScorer

pytestmark = pytest.mark.integration


def _json(port: int, path: str) -> tuple[int, object]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_hot_reload_swaps_models_without_restart_or_lost_records(
    kafka_bootstrap, unique_topic, unique_group, settings_for, tmp_path: Path
) -> None:
    topic = unique_topic(2)
    settings = settings_for(
        kafka={"topic": topic},
        worker={
            "group_id": unique_group,
            "flush_records": 1000,
            "flush_seconds": 1.0,
            "reload_seconds": 1.0,
            "http_port": 0,
        },
        registry={"model_cache": str(tmp_path / "cache")},
    )
    registry = ModelRegistry.from_settings(settings)
    cols = registry.register(write_tiny_model(tmp_path / "c.onnx", "columns"), "cols", "1")
    tensor = registry.register(write_tiny_model(tmp_path / "t.onnx", "tensor"), "tensor", "1")
    registry.transition(cols.model_id, "shadow", "test", "start with one candidate")

    worker = ShadowWorker(settings)
    http = WorkerHttp(0, worker.metrics.text, worker.health, worker.models)
    http.start()
    running = WorkerThread(worker).start()
    first, second = envelopes(4000, seed=31)[:2000], envelopes(4000, seed=31)[2000:]
    produce(kafka_bootstrap, topic, first)
    done = all_committed(kafka_bootstrap, unique_group, topic, 2)
    wait_until(done, 60, "the first half committed")
    status, health = _json(http.port, "/healthz")
    assert status == 200 and health["models"]["cols@1"]["ok"] is True

    registry.transition(tensor.model_id, "shadow", "test", "a new candidate arrives")
    registry.transition(cols.model_id, "retired", "test", "the old one leaves")
    wait_until(
        lambda: [m["model_id"] for m in _json(http.port, "/models")[1]] == ["tensor@1"],
        30,
        "the reload",
    )
    produce(kafka_bootstrap, topic, second)
    wait_until(done, 60, "the second half committed")
    running.stop()
    http.stop()
    registry.close()

    table = read_predictions(open_store(settings.store), None, None)
    by_model = _txns_by_model(table)
    assert by_model["fraud@7"] == {k.decode() for k, _ in first + second}
    assert by_model["cols@1"] == {k.decode() for k, _ in first}
    assert by_model["tensor@1"] == {k.decode() for k, _ in second}
    _assert_scores_match(table, "tensor@1", tensor, tmp_path / "t.onnx", second[:50])


def _txns_by_model(table: pa.Table) -> dict[str, set[str]]:
    models = table.column("model_id").cast(pa.string()).to_pylist()
    out: dict[str, set[str]] = {}
    for model, txn in zip(models, table.column("txn_id").to_pylist(), strict=True):
        out.setdefault(model, set()).add(txn)
    return out


def _assert_scores_match(table, model_id, card, path, records) -> None:
    stored = {
        row["txn_id"]: row["score"]
        for row in table.to_pylist()
        if row["model_id"] == model_id and row["error"] is None
    }
    batch = [decode(value, key) for key, value in records]
    direct = OnnxScorer(card, path).score(batch).scores
    got = np.array([stored[e.txn_id] for e in batch])
    np.testing.assert_allclose(got, direct, rtol=0, atol=1e-6)
