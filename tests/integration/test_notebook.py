"""The data scientists' notebook runs the gate's comparison: executed with nbclient against a
demo-like store, it reads the live threshold as `shadow compare` does (the registry card here,
or the evidence it is pointed at) and its own figures equal `shadow compare`'s evidence."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.integration.report_support import (
    CANDIDATES,
    DAY,
    LIVE_THRESHOLD,
    demo_like_store,
    execute_notebook,
    shadow,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("notebook")
    paths = demo_like_store(folder)
    out = folder / "report"
    done = shadow("compare", "--window", DAY, "--out", str(out), "--config", str(paths["config"]))
    assert done.returncode == 0, done.stderr
    evidence = json.loads((out / "evidence.json").read_text())
    assert (evidence["live_threshold"], evidence["live_threshold_source"]) == (
        LIVE_THRESHOLD,
        "registry",
    )
    return {**paths, "evidence_path": out / "evidence.json", "evidence": evidence}


def figures(notebook: Any) -> dict[str, Any]:
    """The notebook's last JSON output: its figures, the gate's, and their differences."""
    found = [
        output["data"]["application/json"]
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if "application/json" in output.get("data", {})
    ]
    assert found, "the notebook displayed no figures"
    return found[-1]


def plots_are_labelled(notebook: Any) -> int:
    """The number of figures drawn (PNG outputs)."""
    return sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        for output in cell.get("outputs", [])
    )


def expected(evidence: dict[str, Any]) -> dict[str, Any]:
    """The figures the notebook shows, read from `shadow compare`'s evidence file."""
    out = {}
    for name, entry in evidence["candidates"].items():
        agreement = entry["agreement"]
        out[name] = {
            "transactions": entry["transactions"],
            "flips_to_alert": agreement["flips_to_alert"],
            "flips_to_pass": agreement["flips_to_pass"],
            "flip_rate": agreement["flip_rate"],
            "labelled_positives": entry["labelled"]["positives"],
        }
    return out


def test_the_notebook_uses_the_registry_threshold_and_agrees_with_compare(compared) -> None:
    notebook = execute_notebook(
        {"SHADOW_NOTEBOOK_CONFIG": str(compared["config"]), "SHADOW_NOTEBOOK_WINDOW": DAY}
    )
    shown = figures(notebook)
    assert shown["threshold"] == LIVE_THRESHOLD
    assert shown["differences"] == []
    assert sorted(shown["notebook"]) == sorted(CANDIDATES)
    for name, want in expected(compared["evidence"]).items():
        ours = shown["notebook"][name]
        for key, value in want.items():
            assert ours[key] == pytest.approx(value, rel=1e-9), (name, key)
        segments = compared["evidence"]["candidates"][name]["segments"]["merchant_category"]
        assert len(ours["segments"]) == len(segments) == 5
        for row in segments:
            assert ours["segments"][row["segment"]]["flips_to_pass"] == row["flips_to_pass"]
    assert plots_are_labelled(notebook) == 2


def test_the_notebook_pointed_at_evidence_shows_the_gates_figures(compared) -> None:
    notebook = execute_notebook({"SHADOW_NOTEBOOK_EVIDENCE": str(compared["evidence_path"])})
    shown = figures(notebook)
    assert shown["threshold"] == LIVE_THRESHOLD and shown["differences"] == []
    text = json.dumps([cell.get("outputs", []) for cell in notebook.cells])
    assert compared["evidence"]["evidence_id"] in text
    assert "FAIL" in text and "fraud@4" in text
