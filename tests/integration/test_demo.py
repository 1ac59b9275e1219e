"""`shadow demo` end to end: objects in the store, registry states, report and evidence, the live
model switching to the promoted candidate under traffic, exit 0."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shadow.dataset import read_predictions
from shadow.objectstore import LocalStore
from shadow.registry import ModelRegistry

pytestmark = pytest.mark.integration


def test_demo_runs_the_whole_pipeline(tmp_path: Path, kafka_bootstrap: str) -> None:
    env = {**os.environ, "SHADOW__KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from shadow.cli import main; main()",
            "demo",
            "--seconds",
            "20",
            "--tps",
            "500",
            "--fraud-rate",
            "0.05",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "gate verdicts" in done.stdout

    run_dir = (tmp_path / "shadow-data" / "latest").resolve()
    store = LocalStore(run_dir / "store")
    predictions = store.list("predictions")
    assert predictions and all(key.endswith(".parquet") for key in predictions)
    assert store.list("features") and store.list("labels")

    evidence = json.loads((run_dir / "report" / "evidence.json").read_text())
    assert evidence["transactions"] > 1000
    assert set(evidence["candidates"]) == {"fraud@2", "fraud@3", "fraud@4"}
    assert (run_dir / "report" / "report.html").stat().st_size > 10_000

    registry = ModelRegistry(f"sqlite:///{run_dir / 'registry.db'}", store)
    try:
        records = {record.card.model_id: record for record in registry.list()}
    finally:
        registry.close()
    states = {model_id: record.state for model_id, record in records.items()}
    assert states["fraud@4"] == "failed", "the degraded candidate must fail the gate"
    promoted = [m for m, s in states.items() if s == "production"]
    assert len(promoted) == 1 and promoted[0] in {"fraud@2", "fraud@3"}, states
    assert states["fraud@1"] == "retired"
    assert f"promoted {promoted[0]} to production" in done.stdout
    _assert_the_loop_closed(done.stdout, run_dir, store, records, promoted[0])


def _assert_the_loop_closed(
    stdout: str, run_dir: Path, store: LocalStore, records: dict, promoted: str
) -> None:
    """Promotion bound to the gate's verdict; the live service switched to it with no failed
    request; what it mirrored afterwards names it as live; the comparison after has it live."""
    report = run_dir / "report"
    digest = hashlib.sha256((report / "evidence.json").read_bytes()).hexdigest()
    verdict = json.loads((report / "verdict.json").read_text())
    assert verdict["evidence"]["sha256"] == digest and verdict["verdicts"][promoted]["passed"]
    entered = records[promoted].entered
    assert (entered.to_state, entered.kind, entered.evidence_sha256) == (
        "production",
        "transition",
        digest,
    )
    assert records["fraud@1"].entered.kind == "superseded"
    text = " ".join(stdout.split())  # rich wraps long lines
    assert f"live model switched fraud@1 → {promoted}" in text
    assert ", 0 failed requests of" in text
    after = json.loads((run_dir / "after-switch" / "evidence.json").read_text())
    assert after["live_models"] == [promoted] and after["transactions"] > 0
    rows = read_predictions(store, None, None)
    roles, models = rows.column("role").to_pylist(), rows.column("model_id").to_pylist()
    served = {model for model, role in zip(models, roles, strict=True) if role == "live"}
    assert served == {"fraud@1", promoted}, served
