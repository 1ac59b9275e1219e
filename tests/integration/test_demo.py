"""`shadow demo` end to end, run as `make demo` runs it (its default seed, rates and length):
objects in the store, registry states, and the story the README tells — the promoted model and
each candidate's blocking rules — in verdict.json, the report and the registry; the live model
switching to the promoted candidate under traffic; the report opened in a real browser."""

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
from tests.integration.browser_support import inspect_report
from tests.unit.test_readme import README, demo_outcome

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str) -> dict:
    folder = tmp_path_factory.mktemp("demo")
    env = {**os.environ, "SHADOW__KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap}
    done = subprocess.run(
        [sys.executable, "-c", "from shadow.app.cli import main; main()", "demo"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return {"run_dir": (folder / "shadow-data" / "latest").resolve(), "stdout": done.stdout}


def test_demo_runs_the_whole_pipeline(demo) -> None:
    run_dir = demo["run_dir"]
    assert "gate verdicts" in demo["stdout"]
    store = LocalStore(run_dir / "store")
    predictions = store.list("predictions")
    assert predictions and all(key.endswith(".parquet") for key in predictions)
    assert store.list("features") and store.list("labels")
    evidence = json.loads((run_dir / "report" / "evidence.json").read_text())
    assert evidence["transactions"] > 10_000
    assert set(evidence["candidates"]) == {"fraud@2", "fraud@3", "fraud@4"}


def test_the_demo_tells_the_readmes_story(demo) -> None:
    run_dir = demo["run_dir"]
    story = demo_outcome(README.read_text(encoding="utf-8"))
    verdict = json.loads((run_dir / "report" / "verdict.json").read_text())
    status = {"pass": "PASS", "fail": "FAIL", "insufficient": "INSUFFICIENT EVIDENCE"}
    told = {}
    for model, judged in verdict["verdicts"].items():
        entry = judged["gate"]
        blocking = {r["metric"] for r in entry["rules"] if r["status"] in ("fail", "insufficient")}
        promoted = (verdict["promotion"] or {}).get("model_id") == model
        told[model] = (status[entry["status"]], blocking, promoted)
    assert set(told) == set(story)
    for model, (verdict_word, always, maybe, promoted) in story.items():
        said, blocking, up = told[model]
        assert (said, up) == (verdict_word, promoted), model
        assert always <= blocking <= always | maybe, (model, blocking)
    promoted = next(m for m, (*_, up) in story.items() if up)
    assert verdict["promotion"]["evidence_id"] == verdict["evidence"]["id"]
    assert f"promoted {promoted} to production" in demo["stdout"]
    _registry_tells_it(run_dir, story)
    _summary_tells_it(run_dir, story, told, promoted)


def _registry_tells_it(run_dir: Path, story: dict) -> None:
    registry = ModelRegistry(f"sqlite:///{run_dir / 'registry.db'}", LocalStore(run_dir / "store"))
    try:
        records = {record.card.model_id: record for record in registry.list()}
    finally:
        registry.close()
    states = {model_id: record.state for model_id, record in records.items()}
    for model, (verdict, *_, up) in story.items():
        assert states[model] == (
            "production" if up else "passed" if verdict == "PASS" else "failed"
        )
    assert states["fraud@1"] == "retired"


def _summary_tells_it(run_dir: Path, story: dict, told: dict, promoted: str) -> None:
    summary = (run_dir / "report" / "summary.md").read_text()
    head = summary[: summary.index("## Candidate")]
    assert f"Promoted `{promoted}` to production (replacing `fraud@1`)" in head
    for model, (status, *_) in story.items():
        line = next(line for line in head.splitlines() if f"`{model}`" in line and "**" in line)
        assert line.startswith(f"- **{status}** `{model}`")
        assert all(f"`{rule}`" in line for rule in told[model][1])


def test_the_demo_report_in_a_browser(demo, tmp_path: Path) -> None:
    found = inspect_report(demo["run_dir"] / "report" / "report.html", tmp_path / "demo.png")
    assert found["errors"] == [] and found["problems"] == []
    assert found["images"] == 3 * 4 + 1
    assert found["verdictsBottom"] <= found["viewport"]
    assert "Promoted" in found["verdictText"]


def test_the_live_model_switched_to_the_promoted_candidate(demo) -> None:
    run_dir = demo["run_dir"]
    store = LocalStore(run_dir / "store")
    registry = ModelRegistry(f"sqlite:///{run_dir / 'registry.db'}", store)
    try:
        records = {record.card.model_id: record for record in registry.list()}
    finally:
        registry.close()
    promoted = next(m for m, r in records.items() if r.state == "production")
    _assert_the_loop_closed(demo["stdout"], run_dir, store, records, promoted)


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
