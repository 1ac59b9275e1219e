"""`shadow models`: register, list, show, transition, history; one-line errors and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shadow.kit.reference_models import write_tiny_model

SHADOW = [sys.executable, "-c", "from shadow.app.cli import main; main()"]


@pytest.fixture
def shadow(tmp_path: Path):
    env = {
        **os.environ,
        "SHADOW__REGISTRY__URL": f"sqlite:///{tmp_path}/registry.db",
        "SHADOW__STORE__URI": str(tmp_path / "store"),
    }
    env.pop("SHADOW_CONFIG", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*SHADOW, "models", *args], capture_output=True, text=True, env=env, check=False
        )

    return run


def test_register_list_show_transition_history(shadow, tmp_path):
    model = write_tiny_model(tmp_path / "model.onnx", "columns")
    canary = tmp_path / "canary.json"
    canary.write_text(json.dumps({"features": {"amount": 50.0, "device_risk": 0.2}}))
    done = shadow("register", str(model), "--name", "fraud", "--version", "2", "--canary",
                  str(canary), "--threshold", "0.4", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    card = json.loads(done.stdout)
    assert card["model_id"] == "fraud@2" and card["threshold"] == 0.4
    assert card["canary"] == {"amount": 50.0, "device_risk": 0.2}

    moved = shadow("transition", "fraud@2", "shadow", "--reason", "start", "--actor", "ci")
    assert moved.returncode == 0, moved.stderr
    assert "registered -> shadow" in moved.stdout

    listed = json.loads(shadow("list", "--state", "shadow", "--json").stdout)
    assert [(m["model_id"], m["state"]) for m in listed] == [("fraud@2", "shadow")]
    shown = json.loads(shadow("show", "fraud@2", "--json").stdout)
    assert shown["card"]["sha256"] == card["sha256"]
    history = json.loads(shadow("history", "fraud@2", "--json").stdout)
    assert [(e["to_state"], e["actor"]) for e in history][1:] == [("shadow", "ci")]
    table = shadow("list")
    assert table.returncode == 0 and "fraud@2" in table.stdout


def test_refusals_are_one_line_with_exit_code_1(shadow, tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"junk")
    done = shadow("register", str(junk), "--name", "fraud", "--version", "1")
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0
    assert "does not parse as ONNX" in done.stderr
    model = write_tiny_model(tmp_path / "model.onnx", "columns")
    assert shadow("register", str(model), "--name", "fraud", "--version", "1").returncode == 0
    illegal = shadow("transition", "fraud@1", "production", "--reason", "yolo")
    assert illegal.returncode == 1
    assert "is registered" in illegal.stderr and "allowed moves: shadow, retired" in illegal.stderr
    assert "Traceback" not in illegal.stderr
    unknown = shadow("show", "nope@1")
    assert unknown.returncode == 1 and "not registered" in unknown.stderr


def test_a_bad_canary_file_is_a_usage_error(shadow, tmp_path):
    model = write_tiny_model(tmp_path / "model.onnx", "columns")
    canary = tmp_path / "canary.json"
    canary.write_text("{not json")
    done = shadow("register", str(model), "--name", "f", "--version", "1", "--canary", str(canary))
    assert done.returncode == 2 and "is not JSON" in done.stderr
