"""Governance from the command line: the gate's verdict.json, evidence-bound transitions, overrides
shown plainly, rollback, registration thresholds and one actor for every command."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import sys
from pathlib import Path

import onnx
import pytest

from analysis.compare import Comparison
from analysis.evidence import build_evidence, write_evidence
from shadow.app.cli import main
from shadow.kit.reference_models import write_tiny_model
from shadow.kit.sample_store import ModelScores, scenario, write_labels, write_predictions
from shadow.objectstore import LocalStore
from shadow.predictions import ROLE_LIVE
from shadow.registry import ModelRegistry, resolve_actor
from shadow.settings import AnalysisSettings

DAY0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
CANARY = {"amount": 120.0, "device_risk": 0.4, "merchant_category": "7995"}


@pytest.fixture(scope="module")
def evidence_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Evidence where good@1 passes the default policy and bad@1 (noise) fails it."""
    sc = scenario(8000, seed=2, hours=2)
    folder = tmp_path_factory.mktemp("evidence")
    store = LocalStore(folder / "store")
    models = [
        ModelScores("live@1", sc.live, role=ROLE_LIVE),
        ModelScores("good@1", sc.candidate(0.3)),
        ModelScores("bad@1", sc.random_model()),
    ]
    write_predictions(store, sc.ids, sc.event_time_ms, models, batch_txns=2500)
    write_labels(store, sc.ids, sc.labels, sc.amounts)
    settings = AnalysisSettings(bootstrap_samples=30, bootstrap_rows=2000)
    body = Comparison(store, DAY0, DAY0 + dt.timedelta(days=1), settings=settings).run()
    path = folder / "evidence.json"
    write_evidence(build_evidence(body, store=store.uri, start=DAY0, end=None, settings={}), path)
    return path


@pytest.fixture
def report(evidence_source: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "report"
    folder.mkdir()
    shutil.copy(evidence_source, folder / "evidence.json")
    return folder


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModelRegistry:
    monkeypatch.setenv("SHADOW__STORE__URI", str(tmp_path / "store"))
    monkeypatch.setenv("SHADOW__REGISTRY__URL", f"sqlite:///{tmp_path}/registry.db")
    monkeypatch.delenv("SHADOW_CONFIG", raising=False)
    monkeypatch.delenv("GITHUB_ACTOR", raising=False)
    made = ModelRegistry(f"sqlite:///{tmp_path}/registry.db", LocalStore(tmp_path / "store"))
    tiny = write_tiny_model(tmp_path / "m" / "model.onnx", "columns")
    for name in ("good", "bad"):
        made.register(tiny, name, "1", canary=CANARY, actor="ci")
        made.transition(f"{name}@1", "shadow", "ci", "into shadow")
    yield made
    made.close()


def shadow(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["shadow", *args])
    with pytest.raises(SystemExit) as done:
        main()
    return int(done.value.code or 0)


def _one_error(capsys: pytest.CaptureFixture[str]) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_a_move_to_passed_needs_the_gates_verdict_from_the_report(
    registry, report, monkeypatch, capsys
):
    move = ["models", "transition", "bad@1", "passed", "--reason", "looks fine"]
    assert shadow(monkeypatch, *move) == 1
    assert "needs the verdict of a gate that passed it" in _one_error(capsys)
    assert shadow(monkeypatch, "gate", "--evidence", str(report / "evidence.json")) == 1
    verdict = json.loads((report / "verdict.json").read_text())
    digest = hashlib.sha256((report / "evidence.json").read_bytes()).hexdigest()
    assert verdict["evidence"]["sha256"] == digest
    assert {m: v["passed"] for m, v in verdict["verdicts"].items()} == {
        "bad@1": False,
        "good@1": True,
    }
    capsys.readouterr()
    assert shadow(monkeypatch, *move, "--evidence", str(report)) == 1
    assert "bad@1: the gate did not pass it" in _one_error(capsys)
    good = ["models", "transition", "good@1"]
    assert shadow(monkeypatch, *good, "passed", "--reason", "gate", "--evidence", str(report)) == 0
    assert f"gate {verdict['evidence']['id']}" in capsys.readouterr().out
    to_production = [*good, "production", "--reason", "go", "--evidence"]
    assert shadow(monkeypatch, *to_production, str(report / "verdict.json")) == 0
    last = registry.history("good@1")[-1]
    assert (last.to_state, last.evidence, last.evidence_sha256) == (
        "production",
        verdict["evidence"]["id"],
        digest,
    )
    assert registry.get("bad@1").state == "shadow"


def test_evidence_edited_after_the_gate_is_refused(registry, report, monkeypatch, capsys):
    assert shadow(monkeypatch, "gate", "-e", str(report / "evidence.json")) == 1
    evidence = json.loads((report / "evidence.json").read_text())
    evidence["candidates"]["bad@1"]["error_rate"] = 0.0
    (report / "evidence.json").write_text(json.dumps(evidence, indent=2))
    capsys.readouterr()
    move = ["models", "transition", "good@1", "passed", "--reason", "x", "--evidence", str(report)]
    assert shadow(monkeypatch, *move) == 2
    assert "is not the evidence the gate judged" in _one_error(capsys)
    assert registry.get("good@1").state == "shadow"


def test_an_override_is_recorded_and_shown_plainly(registry, monkeypatch, capsys):
    move = ["models", "transition", "bad@1", "passed", "--override", "--reason", "ops said so"]
    assert shadow(monkeypatch, *move, "--actor", "alice") == 0
    assert "OVERRIDE" in capsys.readouterr().out
    assert shadow(monkeypatch, "models", "list", "--json") == 0
    listed = {m["model_id"]: m for m in json.loads(capsys.readouterr().out)}
    assert listed["bad@1"]["entered_by"]["kind"] == "override"
    assert listed["bad@1"]["entered_by"]["reason"] == "ops said so"
    assert listed["good@1"]["entered_by"]["kind"] == "transition"
    assert shadow(monkeypatch, "models", "list") == 0
    table = capsys.readouterr().out
    assert [line for line in table.splitlines() if "bad@1" in line and "OVERRIDE" in line]
    assert not [line for line in table.splitlines() if "good@1" in line and "OVERRIDE" in line]
    assert shadow(monkeypatch, "models", "history", "bad@1") == 0
    assert [line for line in capsys.readouterr().out.splitlines() if "OVERRIDE" in line]


def test_rollback_from_the_command_line(registry, tmp_path, monkeypatch, capsys):
    tiny = write_tiny_model(tmp_path / "r" / "model.onnx", "columns")
    for version in ("1", "2"):
        model_id = registry.register(tiny, "r", version, canary=CANARY).model_id
        for state in ("shadow", "passed", "production"):
            registry.transition(model_id, state, "ci", "test", override=state != "shadow")
    assert shadow(monkeypatch, "models", "rollback", "r", "--reason", "r@2 drops recall") == 0
    assert "r: rolled back r@2 -> r@1" in capsys.readouterr().out
    assert registry.production("r").model_id == "r@1"
    assert shadow(monkeypatch, "models", "history", "r@2") == 0
    assert [line for line in capsys.readouterr().out.splitlines() if "ROLLBACK" in line]
    assert shadow(monkeypatch, "models", "rollback", "r", "--reason", "again") == 1
    assert "no model was in production before r@1" in _one_error(capsys)


def test_registration_without_a_threshold_is_refused_in_one_line(
    registry, tmp_path, monkeypatch, capsys
):
    model = onnx.load(write_tiny_model(tmp_path / "p.onnx", "columns"))
    kept = [p for p in model.metadata_props if p.key != "threshold"]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    plain = tmp_path / "plain.onnx"
    plain.write_bytes(model.SerializeToString())
    register = ["models", "register", str(plain), "--name", "t", "--version", "1"]
    assert shadow(monkeypatch, *register) == 1
    assert "metadata property 'threshold'" in _one_error(capsys)
    assert shadow(monkeypatch, *register, "--threshold", "0.076", "--json") == 0
    assert json.loads(capsys.readouterr().out)["threshold"] == 0.076


@pytest.mark.parametrize("github", [None, "octocat"])
def test_every_command_records_the_same_actor(registry, report, monkeypatch, github):
    """`shadow promote` recorded $USER, `shadow models` user@host: one person, two names."""
    monkeypatch.setenv("USER", "carol")
    monkeypatch.setenv("LOGNAME", "carol")
    if github:
        monkeypatch.setenv("GITHUB_ACTOR", github)
    expected = github or resolve_actor(None)
    assert "@" in expected or github
    assert shadow(monkeypatch, "promote", "good@1", "-e", str(report / "evidence.json")) == 0
    move = ["models", "transition", "bad@1", "retired", "--reason", "noise"]
    assert shadow(monkeypatch, *move) == 0
    actors = {registry.history(m)[-1].actor for m in ("good@1", "bad@1")}
    assert actors == {expected}
