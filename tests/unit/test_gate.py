"""Gate and promotion: policy rules, exit codes 0/1/2, one-line reasons, registry transitions."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from analysis.compare import Comparison
from analysis.evidence import build_evidence, metric_names, write_evidence
from analysis.gate import evaluate
from analysis.policy import default_policy_path, load_policy
from shadow.app.cli import main
from shadow.errors import UsageError
from shadow.kit.reference_models import write_tiny_model
from shadow.kit.sample_store import ModelScores, scenario, write_labels, write_predictions
from shadow.objectstore import LocalStore
from shadow.predictions import ROLE_LIVE
from shadow.registry import ModelRegistry
from shadow.settings import AnalysisSettings

DAY0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
CANARY = {"amount": 120.0, "device_risk": 0.4, "ip_risk": 0.1, "merchant_category": "7995"}


@pytest.fixture(scope="module")
def evidence_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Evidence with a good candidate (good@1) and a clearly worse one (bad@1), with labels."""
    sc = scenario(8000, seed=2, hours=2)
    folder = tmp_path_factory.mktemp("gate")
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


def shadow(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """Run the `shadow` entry point in-process; its exit code."""
    monkeypatch.setattr(sys, "argv", ["shadow", *args])
    with pytest.raises(SystemExit) as done:
        main()
    return int(done.value.code or 0)


def test_default_policy_is_packaged_and_uses_known_metrics() -> None:
    policy = load_policy()
    assert default_policy_path().is_file()
    assert {rule.metric for rule in policy.rules} <= metric_names()
    assert any(rule.optional for rule in policy.rules)


def test_verdicts_per_rule(evidence_file: Path) -> None:
    evidence = json.loads(evidence_file.read_text())
    policy = load_policy()
    good, bad = evaluate(policy, evidence, "good@1"), evaluate(policy, evidence, "bad@1")
    assert good.passed, good.summary
    assert not bad.passed
    failed = {r.rule.metric for r in bad.results if r.status == "fail"}
    assert {"roc_auc_delta_ci_low", "kappa_at_matched_rate", "alert_overlap_pvalue"} <= failed
    assert good.evidence_id == evidence["evidence_id"]


def test_optional_rules_are_skipped_without_labels(evidence_file: Path) -> None:
    evidence = json.loads(evidence_file.read_text())
    for entry in evidence["candidates"].values():
        entry["labelled"] = None
    verdict = evaluate(load_policy(), evidence, "bad@1")
    statuses = {r.rule.metric: r.status for r in verdict.results}
    assert statuses["roc_auc_delta_ci_low"] == "skip"


def test_gate_exit_codes(evidence_file: Path, monkeypatch, capsys) -> None:
    assert shadow(monkeypatch, "gate", "--evidence", str(evidence_file)) == 1
    assert "bad@1" in capsys.readouterr().out
    args = ["gate", "--evidence", str(evidence_file), "--candidate", "good@1", "--json"]
    assert shadow(monkeypatch, *args) == 0
    verdicts = json.loads(capsys.readouterr().out)
    assert verdicts[0]["passed"] is True and verdicts[0]["rules"]


def test_gate_unusable_input_exits_2_with_one_line(
    evidence_file: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    missing = tmp_path / "nope.json"
    assert shadow(monkeypatch, "gate", "--evidence", str(missing)) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: evidence file {missing} does not exist"
    ]
    policy = tmp_path / "p.yaml"
    policy.write_text("rules:\n  - metric: auc_delta_typo\n    min: 0\n")
    assert shadow(monkeypatch, "gate", "-e", str(evidence_file), "-p", str(policy)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown metric 'auc_delta_typo'" in err[0]
    empty = json.loads(evidence_file.read_text())
    empty.update(transactions=0, candidates={})
    (tmp_path / "empty.json").write_text(json.dumps(empty))
    assert shadow(monkeypatch, "gate", "--evidence", str(tmp_path / "empty.json")) == 2
    assert "window held no candidate" in capsys.readouterr().err


def test_policy_errors_are_usage_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    for text in (
        "rules: []\n",
        "rules:\n  - metric: psi\n",
        "rules:\n  - metric: psi\n    max: x\n",
    ):
        bad.write_text(text)
        with pytest.raises(UsageError):
            load_policy(bad)


@pytest.fixture
def registry_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModelRegistry:
    monkeypatch.setenv("SHADOW__STORE__URI", str(tmp_path / "store"))
    monkeypatch.setenv("SHADOW__REGISTRY__URL", f"sqlite:///{tmp_path}/registry.db")
    registry = ModelRegistry(f"sqlite:///{tmp_path}/registry.db", LocalStore(tmp_path / "store"))
    tiny = write_tiny_model(tmp_path / "m" / "model.onnx", "columns")
    for name in ("good", "bad"):
        registry.register(tiny, name, "1", canary=CANARY, actor="ci")
        registry.transition(f"{name}@1", "shadow", "ci", "into shadow")
    return registry


def test_promote_records_the_verdict_with_the_evidence_id(
    evidence_file: Path, registry_env: ModelRegistry, monkeypatch
) -> None:
    evidence_id = json.loads(evidence_file.read_text())["evidence_id"]
    base = ["--evidence", str(evidence_file), "--actor", "ci-bot"]
    assert shadow(monkeypatch, "promote", "good@1", *base) == 0
    assert shadow(monkeypatch, "promote", "bad@1", *base) == 1
    assert registry_env.get("good@1").state == "passed"
    assert registry_env.get("bad@1").state == "failed"
    last = registry_env.history("good@1")[-1]
    assert (last.from_state, last.to_state, last.actor) == ("shadow", "passed", "ci-bot")
    assert last.evidence == evidence_id and "9/10 rules passed" in last.reason
    assert shadow(monkeypatch, "promote", "good@1", *base, "--to", "production") == 0
    assert registry_env.get("good@1").state == "production"
    assert registry_env.history("good@1")[-1].evidence == evidence_id


def test_a_failing_gate_never_reaches_production(
    evidence_file: Path, registry_env: ModelRegistry, monkeypatch
) -> None:
    args = ["promote", "bad@1", "-e", str(evidence_file), "--to", "production"]
    assert shadow(monkeypatch, *args) == 1
    assert registry_env.get("bad@1").state == "shadow"
    assert np.all([e.to_state != "production" for e in registry_env.history("bad@1")])


def test_list_metrics_names_the_policy_vocabulary(monkeypatch, capsys) -> None:
    assert shadow(monkeypatch, "gate", "--list-metrics") == 0
    names = capsys.readouterr().out.split()
    assert names == sorted(metric_names())
    assert {"psi", "roc_auc_delta_ci_low", "latency_p99_ms", "kappa_at_matched_rate"} <= set(names)
    assert "agreement_at_matched_rate" not in names
