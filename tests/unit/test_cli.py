"""The CLI: expected failures print one line and exit with their code, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

SHADOW = [sys.executable, "-c", "from shadow.app.cli import main; main()"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SHADOW, *args], capture_output=True, text=True, env=env, check=False)


def test_help_lists_the_commands() -> None:
    done = run("--help")
    assert done.returncode == 0
    assert "config" in done.stdout and "dev" in done.stdout


def test_help_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys; from shadow.app.cli import app; "
        "heavy = {'onnxruntime', 'pandas', 'duckdb', 'sklearn', 'pyarrow', 'confluent_kafka'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_config_show_prints_yaml_with_secrets_masked(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("tap:\n  hmac_key: do-not-print-me\nkafka:\n  topic: t1\n")
    done = run("config", "show", "--config", str(config))
    assert done.returncode == 0, done.stderr
    shown = yaml.safe_load(done.stdout)
    assert shown["kafka"]["topic"] == "t1"
    assert "do-not-print-me" not in done.stdout


def test_invalid_setting_is_one_line_and_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("worker:\n  flush_seconds: -1\n")
    done = run("config", "show", "--config", str(config))
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "worker.flush_seconds" in done.stderr
    assert "Traceback" not in done.stderr
