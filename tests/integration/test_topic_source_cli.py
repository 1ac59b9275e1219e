"""`shadow tap from-topic` as a user runs it: a one-off drain with --json, settings from the
environment, and a second process with the same instance id fencing the first."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from source_support import produce_json, read_all, sampled, scored_record, write_mapping

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
COMMAND = "from shadow.app.cli import main; main()"


def _env(bootstrap: str, shadow: str, group: str, mapping: Path) -> dict[str, str]:
    return {
        **os.environ,
        "SHADOW__KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "SHADOW__KAFKA__TOPIC": shadow,
        "SHADOW__SOURCE__MAPPING": str(mapping),
        "SHADOW__SOURCE__GROUP_ID": group,
        "SHADOW__SOURCE__START_AT": "earliest",
        "SHADOW__LOG__LEVEL": "WARNING",
    }


def test_a_one_off_drain_prints_its_counts(
    kafka_bootstrap, unique_topic, unique_group, tmp_path: Path
) -> None:
    source, shadow = unique_topic(2), unique_topic(2)
    produce_json(kafka_bootstrap, source, [(None, scored_record(i)) for i in range(600)])
    env = _env(kafka_bootstrap, shadow, unique_group, write_mapping(tmp_path))
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            COMMAND,
            "tap",
            "from-topic",
            "--topic",
            source,
            "--idle-exit",
            "3",
            "--json",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    counts = json.loads(done.stdout.strip().splitlines()[-1])
    expected = sampled([f"src-{i:07d}" for i in range(600)], 1 / 3, "shadow")
    assert counts["consumed"] == 600 and counts["mirrored"] == len(expected)
    assert counts["sampled_out"] == 600 - len(expected) and counts["dead_letters"] == 0
    assert {m.key().decode() for m in read_all(kafka_bootstrap, shadow)} == expected


def test_a_second_process_with_the_same_instance_id_fences_the_first(
    kafka_bootstrap, unique_topic, unique_group, tmp_path: Path
) -> None:
    source, shadow = unique_topic(1), unique_topic(1)
    env = _env(kafka_bootstrap, shadow, unique_group, write_mapping(tmp_path))
    argv = [sys.executable, "-c", COMMAND, "tap", "from-topic", "--topic", source]
    first = subprocess.Popen(argv, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    time.sleep(8)  # started, joined, waiting for records
    second = subprocess.Popen(argv, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while first.poll() is None and time.monotonic() < deadline:
            produce_json(kafka_bootstrap, source, [(None, scored_record(i)) for i in range(50)])
            time.sleep(1)
        assert first.poll() == 1
        errors = [line for line in first.stderr.read().splitlines() if line.startswith("error:")]
        assert errors == [
            "error: from-topic: fenced: another process runs with the same source.instance_id"
        ]
        assert second.poll() is None  # the newer one goes on
    finally:
        for proc in (first, second):
            if proc.poll() is None:
                proc.terminate()
                proc.wait(30)
