"""`shadow compare` on input it cannot use: one line naming the problem, exit 2, no evidence."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from shadow.app.cli import main
from shadow.kit.sample_store import ModelScores, scenario, write_predictions
from shadow.objectstore import LocalStore
from shadow.predictions import ROLE_LIVE


@pytest.fixture
def store(tmp_path: Path) -> Path:
    sc = scenario(3000, seed=4, hours=2)
    root = tmp_path / "store"
    models = [ModelScores("live@1", sc.live, role=ROLE_LIVE), ModelScores("c@1", sc.candidate(1))]
    write_predictions(LocalStore(root), sc.ids, sc.event_time_ms, models, batch_txns=1000)
    return root


def compare(monkeypatch, capsys, root: Path, out: Path, *extra: str) -> tuple[int, list[str]]:
    monkeypatch.setenv("SHADOW__STORE__URI", str(root))
    monkeypatch.setenv("SHADOW__REGISTRY__URL", f"sqlite:///{out.parent}/absent.db")
    monkeypatch.setenv("SHADOW__ANALYSIS__BOOTSTRAP_SAMPLES", "10")
    args = ["shadow", "compare", "-w", "2026-01-01", "-o", str(out), *extra]
    monkeypatch.setattr(sys, "argv", args)
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:
        main()
    err = capsys.readouterr().err.strip().splitlines()
    return int(done.value.code or 0), err


def _fails(code: int, err: list[str], out: Path, *words: str) -> None:
    assert code == 2, err
    assert len(err) == 1 and "Traceback" not in err[0], err
    for word in words:
        assert word in err[0], err
    assert not (out / "evidence.json").exists()


def test_a_store_that_does_not_exist(tmp_path, monkeypatch, capsys) -> None:
    out = tmp_path / "out"
    code, err = compare(monkeypatch, capsys, tmp_path / "nowhere", out)
    _fails(code, err, out, str(tmp_path / "nowhere"), "does not exist")


def test_a_folder_that_is_not_a_store(tmp_path, monkeypatch, capsys) -> None:
    (tmp_path / "photos").mkdir()
    out = tmp_path / "out"
    code, err = compare(monkeypatch, capsys, tmp_path / "photos", out)
    _fails(code, err, out, "photos", "no predictions/ folder")


def test_an_empty_window(store, tmp_path, monkeypatch, capsys) -> None:
    out = tmp_path / "out"
    monkeypatch.setenv("SHADOW__STORE__URI", str(store))
    code, err = compare(monkeypatch, capsys, store, out, "-w", "2026-03-01")
    _fails(code, err, out, "no predictions in the window 2026-03-01", "dated 2026-01-01")


def test_an_unknown_candidate(store, tmp_path, monkeypatch, capsys) -> None:
    out = tmp_path / "out"
    code, err = compare(monkeypatch, capsys, store, out, "--candidate", "typo@9")
    _fails(code, err, out, "typo@9", "candidates there: c@1")


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_corrupt_object_is_named_or_skipped_and_counted(
    store, tmp_path, monkeypatch, capsys, damage: str
) -> None:
    victim = sorted(store.rglob("*.parquet"))[1]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"\x00" * 999)
    key = str(victim.relative_to(store))
    out = tmp_path / "out"
    code, err = compare(monkeypatch, capsys, store, out)
    _fails(code, err, out, key, "not readable Parquet", "--skip-corrupt")
    code, err = compare(monkeypatch, capsys, store, out, "--skip-corrupt")
    assert code == 0, err
    evidence = json.loads((out / "evidence.json").read_text())
    assert [s["key"] for s in evidence["skipped_objects"]] == [key]
    assert evidence["transactions"] == 2000  # the two readable objects of 1000
    assert any(key in line for line in err)
    assert np.isfinite(evidence["candidates"]["c@1"]["distribution"]["psi"])


def test_a_bad_policy_stops_compare_before_the_work(store, tmp_path, monkeypatch, capsys) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("rules:\n  - metric: pr_auc\n    min: 0.1\n")
    out = tmp_path / "out"
    code, err = compare(monkeypatch, capsys, store, out, "--policy", str(policy))
    _fails(code, err, out, "pr_auc is now called average_precision")
    code, err = compare(monkeypatch, capsys, store, out, "--policy", str(policy), "--no-gate")
    _fails(code, err, out, "--policy and --no-gate")


def test_compare_judges_by_default_and_not_with_no_gate(
    store, tmp_path, monkeypatch, capsys
) -> None:
    out = tmp_path / "judged"
    code, err = compare(monkeypatch, capsys, store, out)
    assert code == 0, err  # the verdicts never set compare's exit code
    verdict = json.loads((out / "verdict.json").read_text())
    assert sorted(verdict["verdicts"]) == ["c@1"]
    assert "c@1: " in "\n".join(err)
    summary = (out / "summary.md").read_text()
    assert summary.splitlines()[2].startswith("## Verdicts (policy `default`")
    plain = tmp_path / "plain"
    code, err = compare(monkeypatch, capsys, store, plain, "--no-gate")
    assert code == 0, err
    assert not (plain / "verdict.json").exists()
    assert "**NOT JUDGED** `c@1`" in (plain / "summary.md").read_text()
