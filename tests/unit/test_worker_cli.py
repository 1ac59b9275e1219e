"""`shadow worker` and `python -m shadow worker`: expected failures are one line and a code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_shadow_worker_with_a_bad_config_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "worker.yaml"
    config.write_text("worker:\n  flush_records: -1\n")
    shadow = str(Path(sys.executable).with_name("shadow"))
    done = _run(shadow, "worker", "--config", str(config))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert "worker.flush_records" in done.stderr and "Traceback" not in done.stderr


def test_module_entry_point_reports_a_missing_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    done = _run(sys.executable, "-m", "shadow", "worker", "--config", str(missing))
    assert done.returncode == 2
    assert "cannot read the config file" in done.stderr and "Traceback" not in done.stderr
