"""What a verdict must mean: noise fails without labels, thin or missing labels never pass, and
labelled rules bind the interval, not the point estimate."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from analysis.compare import Comparison
from analysis.evidence import build_evidence, write_evidence
from analysis.gate import evaluate
from analysis.policy import load_policy
from shadow.app.cli import main
from shadow.errors import UsageError
from shadow.kit.sample_store import ModelScores, scenario, write_labels, write_predictions
from shadow.objectstore import LocalStore
from shadow.predictions import ROLE_LIVE
from shadow.settings import AnalysisSettings

DAY0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
WINDOW = (DAY0, DAY0 + dt.timedelta(days=1))
SETTINGS = AnalysisSettings(bootstrap_samples=60, bootstrap_rows=20_000)


def _evidence(folder: Path, labels: str | None, n: int = 20_000) -> dict:
    """Live with 1 % fraud, and hand-made candidates: live's scores permuted, a constant, live
    itself, 1 - live, and a slightly noisier copy of live. `labels`: None, "all", "legit"
    (labels with no fraud) or "few" (30 frauds)."""
    sc = scenario(n, seed=13, hours=4)
    rng = np.random.default_rng(13)
    store = LocalStore(folder)
    models = [
        ModelScores("live@1", sc.live, role=ROLE_LIVE),
        ModelScores("permuted@1", rng.permutation(sc.live)),
        ModelScores("constant@1", np.full(n, 0.3)),
        ModelScores("same@1", sc.live.copy()),
        ModelScores("inverse@1", 1 - sc.live),
        ModelScores("noisy@1", np.clip(sc.live + rng.normal(0, 0.007, n), 0, 1)),
    ]
    write_predictions(store, sc.ids, sc.event_time_ms, models, batch_txns=5000)
    if labels is not None:
        truth = sc.labels.copy()
        if labels == "legit":
            truth[:] = 0
        elif labels == "few":
            truth[np.flatnonzero(truth)[30:]] = 0
        write_labels(store, sc.ids, truth, sc.amounts)
    body = Comparison(store, *WINDOW, settings=SETTINGS, live_threshold=0.3).run()
    return build_evidence(body, store=store.uri, start=DAY0, end=None, settings={})


@pytest.fixture(scope="module")
def unlabelled(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return _evidence(tmp_path_factory.mktemp("none"), None)


def _statuses(evidence: dict, candidate: str) -> tuple[str, dict[str, str]]:
    verdict = evaluate(load_policy(), evidence, candidate)
    return verdict.status, {r.rule.metric: r.status for r in verdict.results}


def test_without_labels_noise_fails_and_live_itself_passes(unlabelled: dict) -> None:
    rate = unlabelled["candidates"]["same@1"]["agreement"]["live_alert_rate"]
    assert 0.003 < rate < 0.03  # a fraud alert rate
    for noise in ("permuted@1", "constant@1", "inverse@1"):
        status, rules = _statuses(unlabelled, noise)
        assert status == "fail", noise
        assert rules["kappa_at_matched_rate"] == "fail", noise
        assert rules["alert_overlap_pvalue"] == "fail", noise
        assert rules["roc_auc_delta_ci_low"] == "skip"  # labels may come later
    assert _statuses(unlabelled, "same@1")[0] == "pass"
    assert _statuses(unlabelled, "noisy@1")[0] == "pass"


def test_the_gate_command_fails_noise_without_labels(
    unlabelled: dict, tmp_path: Path, monkeypatch, capsys
) -> None:
    path = tmp_path / "evidence.json"
    write_evidence(unlabelled, path)
    for candidate, code in (("permuted@1", 1), ("constant@1", 1), ("same@1", 0)):
        monkeypatch.setattr(sys, "argv", ["shadow", "gate", "-e", str(path), "--candidate",
                                          candidate, "--json"])  # fmt: skip
        with pytest.raises(SystemExit) as done:
            main()
        assert (done.value.code or 0) == code, candidate
        verdict = json.loads(capsys.readouterr().out)[0]
        assert verdict["status"] == ("pass" if code == 0 else "fail")


@pytest.mark.parametrize("labels", ["legit", "few"])
def test_labels_without_enough_fraud_never_pass(tmp_path: Path, labels: str) -> None:
    evidence = _evidence(tmp_path, labels)
    entry = evidence["candidates"]["same@1"]["labelled"]
    assert entry["positives"] == (0 if labels == "legit" else 30)
    assert entry["negatives"] == entry["transactions"] - entry["positives"]
    status, rules = _statuses(evidence, "same@1")
    assert status == "insufficient"
    assert rules["roc_auc_delta_ci_low"] == rules["recall_at_live_rate_delta_ci_low"]
    assert rules["roc_auc_delta_ci_low"] == "insufficient"
    assert rules["kappa_at_matched_rate"] == "pass"
    verdict = evaluate(load_policy(), evidence, "same@1")
    assert not verdict.passed and "insufficient evidence" in verdict.summary


def test_labelled_rules_bind_the_lower_bound_not_the_point(tmp_path: Path) -> None:
    evidence = _evidence(tmp_path, "all")
    auc = evidence["candidates"]["noisy@1"]["labelled"]["metrics"]["roc_auc"]
    assert auc["delta"] > -0.005 > auc["delta_ci_low"]  # close, but not shown to be no worse
    assert evidence["candidates"]["noisy@1"]["labelled"]["positives"] >= 50
    _, rules = _statuses(evidence, "noisy@1")
    assert rules["roc_auc_delta_ci_low"] == "fail"
    point = tmp_path / "point.yaml"
    point.write_text("rules:\n  - {metric: roc_auc_delta, min: -0.005}\n")
    assert evaluate(load_policy(point), evidence, "noisy@1").passed
    status, rules = _statuses(evidence, "same@1")
    assert status == "pass", rules


def test_thin_windows_are_insufficient_not_failed(unlabelled: dict) -> None:
    thin = json.loads(json.dumps(unlabelled))
    thin["candidates"]["same@1"]["transactions"] = 400
    status, rules = _statuses(thin, "same@1")
    assert (status, rules["transactions"]) == ("insufficient", "insufficient")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules:\n  - {metric: agreement_at_matched_rate, min: 0.9}\n",
         "now called decision_agreement_at_matched_rate"),
        ("rules:\n  - {metric: pr_auc, min: 0.1}\n", "now called average_precision"),
        ("rules:\n  - {metric: psi, max: .nan}\n", "finite"),
        ("min_positives: -3\nrules:\n  - {metric: psi, max: 1}\n", "min_positives"),
        ("rules:\n  - {metric: roc_auc, min: 0.5, min_positives: x}\n", "min_positives"),
        ("rules:\n  - {metric: psi, max: 1, optional: maybe}\n", "optional"),
        ("rule:\n  - {metric: psi, max: 1}\n", "non-empty 'rules'"),
    ],
)  # fmt: skip
def test_policy_mistakes_are_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(UsageError, match=message) as caught:
        load_policy(path)
    assert "\n" not in str(caught.value)


def test_evidence_of_another_version_is_refused_in_one_line(unlabelled: dict, tmp_path) -> None:
    from analysis.evidence import load_evidence

    old = dict(unlabelled, version=1)
    path = tmp_path / "old.json"
    write_evidence(old, path)
    with pytest.raises(UsageError, match="version 1, this shadow reads version 2") as caught:
        load_evidence(path)
    assert "\n" not in str(caught.value)
