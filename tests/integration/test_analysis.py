"""Analysis end to end: reference models scored into an S3 store, compare + gate through the CLI,
the registry's card threshold, and the data scientists' notebook executed with nbclient."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from analysis.compare import Comparison
from shadow.dataset import footer_models, open_dataset, read_predictions
from shadow.kit.reference_models import build_reference_models
from shadow.kit.sample_store import (
    ModelScores,
    scenario,
    write_features,
    write_labels,
    write_predictions,
)
from shadow.kit.synthetic import TransactionGenerator, feature_dicts, labels_of
from shadow.modelcard import card_for_file
from shadow.objectstore import LocalStore, open_store
from shadow.predictions import PREDICTIONS, ROLE_LIVE
from shadow.registry import ModelRegistry
from shadow.scorer import OnnxScorer
from shadow.settings import AnalysisSettings, load_settings
from tests.integration.report_support import execute_notebook

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DAY = "2026-01-01"
BATCH = 2000


def _scores(name: str, model: Any, rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Scores and per-row latency (us) of a reference model, batch by batch like the worker."""
    card = card_for_file(model.path, f"{name}@ref")
    scorer = OnnxScorer(card, model.path)
    scores, latency = [], []
    for begin in range(0, len(rows), BATCH):
        batch = scorer.score_features(rows[begin : begin + BATCH])
        scores.append(batch.scores)
        latency.append(np.full(len(batch.scores), batch.seconds * 1e6 / len(batch.scores)))
    return np.concatenate(scores), np.concatenate(latency).astype(np.float32)


@pytest.fixture(scope="module")
def reference_traffic() -> dict[str, Any]:
    """12,000 synthetic transactions (2 % fraud) scored by gbdt (live), lr and degraded."""
    frame = TransactionGenerator(seed=31, fraud_rate=0.02).batch(12_000, tps=0.5)
    rows = feature_dicts(frame)
    models = build_reference_models()
    scored = {name: _scores(name, models[name], rows) for name in ("gbdt", "lr", "degraded")}
    return {"frame": frame, "scored": scored, "models": models}


def _fill(store: Any, traffic: dict[str, Any]) -> None:
    frame, scored = traffic["frame"], traffic["scored"]
    ids = frame["txn_id"].to_numpy(dtype=object)
    times = frame["event_time"].to_numpy(dtype=np.int64)
    models = [
        ModelScores("gbdt@ref", scored["gbdt"][0], ROLE_LIVE, 0.5, scored["gbdt"][1]),
        ModelScores("lr@ref", scored["lr"][0], latency_us=scored["lr"][1]),
        ModelScores("degraded@ref", scored["degraded"][0], latency_us=scored["degraded"][1]),
    ]
    write_predictions(store, ids, times, models, batch_txns=4000)
    labels = labels_of(frame, seed=31)
    write_labels(store, ids, labels["label"].to_numpy(), labels["amount"].to_numpy())
    categories = frame["merchant_category"].astype(str).to_numpy(dtype=object)
    write_features(store, ids, times, {"merchant_category": categories}, batch_txns=4000)


def _shadow(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = "from shadow.app.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=False,
        cwd=ROOT,
    )


def _env(s3_store: dict[str, Any], registry_url: str) -> dict[str, str]:
    env = {f"SHADOW__STORE__{k.upper()}": str(v) for k, v in s3_store.items()}
    env["SHADOW__REGISTRY__URL"] = registry_url
    env["SHADOW__ANALYSIS__MIN_SEGMENT_ROWS"] = "300"
    return env


def test_s3_compare_and_gate_pass_lr_and_fail_degraded(
    reference_traffic, s3_store, tmp_path: Path
) -> None:
    settings = load_settings(store=s3_store, registry={"url": f"sqlite:///{tmp_path}/r.db"})
    store = open_store(settings.store)
    _fill(store, reference_traffic)
    # the live model is registered: its card threshold is the live threshold
    registry = ModelRegistry.from_settings(settings)
    gbdt = reference_traffic["models"]["gbdt"]
    registry.register(gbdt.path, "gbdt", "ref", threshold=0.3, **gbdt.info)
    registry.close()

    env = _env(s3_store, settings.registry.url)
    out = tmp_path / "out"
    done = _shadow("compare", "--window", DAY, "--out", str(out), env=env)
    assert done.returncode == 0, done.stderr
    evidence = json.loads((out / "evidence.json").read_text())
    assert evidence["transactions"] == 12_000 and evidence["labelled_transactions"] == 12_000
    assert (evidence["live_threshold"], evidence["live_threshold_source"]) == (0.3, "registry")
    assert evidence["inputs"]["store"] == s3_store["uri"]
    lr = evidence["candidates"]["lr@ref"]
    assert lr["labelled"]["metrics"]["roc_auc"]["delta"] > 0
    assert lr["segments"]["merchant_category"]
    assert (out / "report.html").stat().st_size > 20_000

    evidence_path = str(out / "evidence.json")
    good = _shadow("gate", "-e", evidence_path, "--candidate", "lr@ref", env=env)
    bad = _shadow("gate", "-e", evidence_path, "--candidate", "degraded@ref", env=env)
    assert good.returncode == 0, good.stdout
    assert bad.returncode == 1, bad.stdout
    assert "roc_auc_delta" in bad.stdout and "FAIL" in bad.stdout


def test_s3_and_local_reads_give_the_same_figures(
    reference_traffic, s3_store, tmp_path: Path
) -> None:
    s3 = open_store(load_settings(store=s3_store).store)
    local = LocalStore(tmp_path / "local")
    for store in (s3, local):
        _fill(store, reference_traffic)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    end = start + dt.timedelta(days=1)
    assert read_predictions(s3, start, end).num_rows == 36_000
    models = [("degraded@ref", "candidate"), ("gbdt@ref", "live"), ("lr@ref", "candidate")]
    assert footer_models(open_dataset(s3, PREDICTIONS, start, end)) == models  # no scan
    settings = AnalysisSettings(bootstrap_samples=20, min_segment_rows=300)
    bodies = [Comparison(s, start, end, settings=settings).run() for s in (s3, local)]
    # the same figures whatever the store and whatever order the engine returned the rows in
    # (sums may differ in the last bits: compared with a relative tolerance of 1e-9)
    assert _diff(bodies[0]["candidates"], bodies[1]["candidates"]) == []


def test_the_notebook_runs_end_to_end(tmp_path: Path) -> None:
    sc = scenario(6000, seed=9, hours=8)
    store = LocalStore(tmp_path / "store")
    models = [
        ModelScores("live@1", sc.live, role=ROLE_LIVE),
        ModelScores("good@2", sc.candidate(0.5)),
        ModelScores("shifted@2", sc.candidate(0.5, shift=1.5)),
    ]
    write_predictions(store, sc.ids, sc.event_time_ms, models, batch_txns=1500)
    write_labels(store, sc.ids, sc.labels, sc.amounts)
    write_features(store, sc.ids, sc.event_time_ms, {"merchant_category": sc.merchant_category})
    env = {
        "SHADOW_NOTEBOOK_STORE": str(store.root),
        "SHADOW_NOTEBOOK_WINDOW": DAY,
        "SHADOW__REGISTRY__URL": f"sqlite:///{tmp_path}/registry.db",
    }
    notebook = execute_notebook(env)
    text = json.dumps([cell.get("outputs", []) for cell in notebook.cells])
    assert "store " + str(store.root) in text
    assert "shifted@2" in text and "good@2" in text
    assert "image/png" in text
    assert "6,000 labels in the store" in text


def _diff(a: Any, b: Any, path: str = "") -> list[str]:
    """Paths where two evidence bodies differ (numbers: beyond a relative 1e-9)."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = a.keys() | b.keys()
        return [d for k in sorted(keys) for d in _diff(a.get(k), b.get(k), f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        pairs = enumerate(zip(a, b, strict=True))
        return [d for i, (x, y) in pairs for d in _diff(x, y, f"{path}[{i}]")]
    if isinstance(a, float) and isinstance(b, float):
        same = math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) or (a != a and b != b)
        return [] if same else [f"{path}: {a} != {b}"]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]
