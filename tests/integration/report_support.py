"""A store shaped like `make demo`'s: two minutes of traffic, a live model with a registered card
threshold, three candidates (a better one, a different family, a degraded one), labels with
about 1 % fraud, merchant categories and single-request probes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from shadow.kit.reference_models import write_tiny_model
from shadow.kit.sample_store import (
    ModelScores,
    scenario,
    write_features,
    write_labels,
    write_predictions,
)
from shadow.objectstore import LocalStore
from shadow.predictions import ROLE_LIVE
from shadow.registry import ModelRegistry

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "compare_candidates.ipynb"
DAY = "2026-01-01"
LIVE, LIVE_THRESHOLD = "fraud@1", 0.08
CANDIDATES = ("fraud@2", "fraud@3", "fraud@4")


def demo_like_store(folder: Path, transactions: int = 20_000) -> dict[str, Path | str]:
    """Predictions, features, labels and a registry under `folder`; returns the paths and a
    settings file (as the demo's shadow.yaml) naming them."""
    sc = scenario(transactions, seed=11, hours=2 / 60)
    sc.labels[:] = (sc.rng.random(transactions) < 0.01).astype(np.int8)
    sc.signal[:] = sc.rng.normal(-4.5, 1.0, transactions) + 3.0 * sc.labels
    live = 1 / (1 + np.exp(-(sc.signal + sc.rng.normal(0, 0.9, transactions))))
    rng = np.random.default_rng(2)

    def latency(scale: float) -> np.ndarray:
        return rng.gamma(2.0, scale, transactions).astype(np.float32)

    models = [
        ModelScores(LIVE, live, role=ROLE_LIVE, latency_us=latency(90)),
        ModelScores(CANDIDATES[0], sc.candidate(0.5), latency_us=latency(5)),
        ModelScores(CANDIDATES[1], sc.candidate(0.7, shift=1.0) ** 2, latency_us=latency(8)),
        ModelScores(CANDIDATES[2], sc.random_model() ** 3, latency_us=latency(5)),
    ]
    store = LocalStore(folder / "store")
    write_predictions(store, sc.ids, sc.event_time_ms, models, batch_txns=2500)
    write_labels(store, sc.ids, sc.labels, sc.amounts)
    categories = {"merchant_category": sc.merchant_category}
    write_features(store, sc.ids, sc.event_time_ms, categories, batch_txns=2500)
    registry_url = f"sqlite:///{folder / 'registry.db'}"
    registry = ModelRegistry(registry_url, store)
    try:
        name, version = LIVE.split("@")
        registry.register(write_tiny_model(folder / "live.onnx"), name, version, LIVE_THRESHOLD)
    finally:
        registry.close()
    config = folder / "shadow.yaml"
    config.write_text(
        f"store:\n  uri: {store.root}\nregistry:\n  url: {registry_url}\n"
        "analysis:\n  min_segment_rows: 300\n  bootstrap_samples: 100\n",
        encoding="utf-8",
    )
    return {"store": store.root, "config": config, "registry": registry_url}


def shadow(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The `shadow` command in a fresh process, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-c", "from shadow.app.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
        cwd=ROOT,
        timeout=600,
    )


def execute_notebook(env: dict[str, str]) -> Any:
    """Run every cell of the notebook in a kernel that sees `env`; returns the executed one."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)  # the kernel inherits the environment of this process
    try:
        client = NotebookClient(
            notebook,
            timeout=300,
            kernel_name="python3",
            resources={"metadata": {"path": str(ROOT)}},
        )
        client.execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return notebook
