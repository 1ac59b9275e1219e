"""The report in a real browser: `shadow compare` on a demo-like store, then headless Chromium
opens report.html: it loads without an error, every image decodes, the verdicts are on the
first screen, every table row has as many cells as its header; `shadow gate` writes its
verdicts beside the evidence."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.integration.browser_support import inspect_report
from tests.integration.report_support import CANDIDATES, DAY, demo_like_store, shadow

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("demo-like")
    paths = demo_like_store(folder)
    out = folder / "report"
    done = shadow("compare", "--window", DAY, "--out", str(out), "--config", str(paths["config"]))
    assert done.returncode == 0, done.stderr
    return {"out": out, "config": paths["config"], "stdout": done.stdout, "stderr": done.stderr}


def test_the_report_opens_with_the_verdicts_and_renders_whole(compared, tmp_path: Path) -> None:
    report = compared["out"] / "report.html"
    found = inspect_report(report, tmp_path / "report.png")
    assert found["errors"] == []
    assert found["problems"] == []  # images decode, rows have their header's cells
    assert found["images"] == 3 * 4 + 1  # per candidate: curves, scores, QQ, time; latency
    assert found["scripts"] == 0 and found["links"] == 0
    assert found["verdictsBottom"] <= found["viewport"], "the verdicts are not on the first screen"
    verdicts = found["verdictText"]
    for model in CANDIDATES:
        assert model in verdicts
    assert "FAIL" in verdicts and "PASS" in verdicts
    assert (tmp_path / "report.first.png").stat().st_size > 10_000


def test_compare_writes_the_verdicts_it_judged(compared) -> None:
    out = compared["out"]
    verdict = json.loads((out / "verdict.json").read_text())
    evidence_bytes = (out / "evidence.json").read_bytes()
    assert verdict["evidence"]["sha256"] == hashlib.sha256(evidence_bytes).hexdigest()
    assert verdict["evidence"]["id"] == json.loads(evidence_bytes)["evidence_id"]
    assert verdict["policy"]["file"].endswith("default.yaml")
    statuses = {m: v["gate"]["status"] for m, v in verdict["verdicts"].items()}
    assert statuses["fraud@4"] == "fail"  # random scores: noise fails without labels too
    assert "fraud@4: FAIL" in compared["stderr"]
    summary = (out / "summary.md").read_text()
    assert summary.index("**FAIL** `fraud@4`") < summary.index("## Candidate")


def test_gate_writes_its_verdicts_into_the_report_folder(compared, tmp_path: Path) -> None:
    out = tmp_path / "copy"
    out.mkdir()
    (out / "evidence.json").write_bytes((compared["out"] / "evidence.json").read_bytes())
    done = shadow("gate", "--evidence", str(out / "evidence.json"), "--candidate", "fraud@4")
    assert done.returncode == 1, done.stdout
    verdict = json.loads((out / "verdict.json").read_text())
    assert sorted(verdict["verdicts"]) == ["fraud@4"]
    summary = (out / "summary.md").read_text()
    assert "**FAIL** `fraud@4`" in summary and "**NOT JUDGED** `fraud@2`" in summary
    found = inspect_report(out / "report.html")
    assert found["errors"] == [] and found["problems"] == []
