"""`shadow dev kafka|s3 start|status|stop`: a real broker and S3 API server, started and removed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shadow.kit.dev.kafka import broker_answers
from shadow.kit.dev.s3 import s3_answers

pytestmark = pytest.mark.integration

SHADOW = [sys.executable, "-c", "from shadow.app.cli import main; main()"]


def shadow(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SHADOW__KAFKA__DEV_HOME": str(home)}
    env.pop("SHADOW__KAFKA__BOOTSTRAP_SERVERS", None)
    return subprocess.run(
        [*SHADOW, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_kafka_start_status_stop(tmp_path: Path) -> None:
    started = shadow(tmp_path, "dev", "kafka", "start", "--json")
    assert started.returncode == 0, started.stderr[-1500:]
    state = json.loads(started.stdout)
    try:
        assert state["running"] is True
        assert broker_answers(state["bootstrap"])
        status = json.loads(shadow(tmp_path, "dev", "kafka", "status", "--json").stdout)
        assert status == state
        again = json.loads(shadow(tmp_path, "dev", "kafka", "start", "--json").stdout)
        assert again["pid"] == state["pid"], "a second start reuses the running broker"
    finally:
        stopped = shadow(tmp_path, "dev", "kafka", "stop")
    assert stopped.returncode == 0
    assert (
        json.loads(shadow(tmp_path, "dev", "kafka", "status", "--json").stdout)["running"] is False
    )
    assert not (tmp_path / "run" / "kafka").exists(), "stop removes the broker's state"
    assert not broker_answers(state["bootstrap"], timeout=1.0)


def test_s3_start_status_stop(tmp_path: Path) -> None:
    started = shadow(tmp_path, "dev", "s3", "start", "--json")
    assert started.returncode == 0, started.stderr[-1500:]
    state = json.loads(started.stdout)
    try:
        assert state["running"] is True and s3_answers(state["bootstrap"])
    finally:
        shadow(tmp_path, "dev", "s3", "stop")
    assert json.loads(shadow(tmp_path, "dev", "s3", "status", "--json").stdout)["running"] is False
    assert not s3_answers(state["bootstrap"])
