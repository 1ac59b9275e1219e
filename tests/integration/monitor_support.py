"""Shared pieces of the monitor integration tests (no tests here): monitor settings, the monitor
in a subprocess, prediction records, shadow models in the registry."""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from consumers.publisher import PredictionPublisher
from shadow.envelope import CandidateScore, LiveScore, PredictionRecord
from shadow.kit.dev.process import free_port
from shadow.kit.reference_models import write_tiny_model
from shadow.registry import ModelRegistry
from shadow.settings import Settings

SHADOW = str(Path(sys.executable).parent / "shadow")


def monitor_settings(settings_for: Callable[..., Settings], unique_topic: Any, **monitor: Any):
    topic = unique_topic(partitions=3, prefix="preds")
    conf = {
        "app_id": f"mon-{topic}",
        "window_seconds": 2,
        "grace_seconds": 1,
        "check_seconds": 0.5,
        "min_count": 20,
        "keep_windows": 1000,
        "web_port": free_port(),
        "web_host": "127.0.0.1",
        "rules": [
            {"metric": "psi", "op": ">", "threshold": 1.0, "windows": 2},
            {"metric": "error_rate", "op": ">", "threshold": 0.05, "windows": 2},
        ],
        **monitor,
    }
    return settings_for(worker={"predictions_topic": topic}, monitor=conf)


class MonitorProcess:
    """`shadow monitor --config FILE` in a subprocess, stopped with SIGTERM."""

    def __init__(self, settings: Settings, folder: Path) -> None:
        self.settings = settings
        self.config = folder / "monitor.yaml"
        data = settings.model_dump(mode="json")
        data["monitor"]["data_dir"] = str(folder / "faust")
        self.config.write_text(yaml.safe_dump(data))
        self.log = folder / "monitor.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> MonitorProcess:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [SHADOW, "monitor", "--config", str(self.config), "--faust-log", "info"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def windows(self) -> dict[str, Any] | None:
        url = f"http://127.0.0.1:{self.settings.monitor.web_port}/shadow/windows/"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return json.loads(response.read())
        except OSError:
            return None

    def totals(self) -> dict[str, float]:
        doc = self.windows() or {"models": {}}
        return {m: sum(w["count"] for w in ws) for m, ws in doc["models"].items()}

    def records_folded(self) -> float:
        """shadow_monitor_records_total: every record the monitor read, with or without scores."""
        url = f"http://127.0.0.1:{self.settings.monitor.web_port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                text = response.read().decode()
        except OSError:
            return 0.0
        found = re.search(r"^shadow_monitor_records_total (\S+)$", text, re.MULTILINE)
        return float(found.group(1)) if found else 0.0

    def wait_until_consuming(self, publisher: PredictionPublisher, timeout: float = 90) -> None:
        """Send probe records (no candidate scores: no window counts them) until the monitor
        has read one: its consumer has its partitions and fetches (its web page answers
        sooner than that)."""

        def probed() -> bool:
            publisher.send([probe_record()])
            publisher.producer.flush(5)
            return self.records_folded() > 0

        self.wait_for(probed, timeout, "a probe record read by the monitor")

    def wait_for(self, check: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is None or self.proc.poll() is None, self.log.read_text()[-3000:]
            found = check()
            if found:
                return found
            time.sleep(0.25)
        raise AssertionError(f"{what} not seen in {timeout}s; log: {self.log.read_text()[-3000:]}")


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Callable[[Settings], MonitorProcess]]:
    started: list[MonitorProcess] = []

    def start(settings: Settings) -> MonitorProcess:
        monitor = MonitorProcess(settings, tmp_path).start()
        started.append(monitor)
        monitor.wait_for(monitor.windows, 60, "the monitor's web server")
        return monitor

    yield start
    for monitor in started:
        monitor.stop()


def records(n: int, rng: random.Random, constant: float = 0.5) -> list[PredictionRecord]:
    """n transactions scored now: good@1 tracks live closely, const@1 always answers `constant`."""
    now = time.time_ns() // 1_000_000
    out = []
    for i in range(n):
        live = rng.random() ** 3
        good = min(1.0, max(0.0, live + rng.gauss(0, 0.02)))
        candidates = [
            CandidateScore("good@1", good, None, 40.0 + rng.random() * 10),
            CandidateScore("const@1", constant, None, 30.0),
        ]
        live_score = LiveScore("live@1", live, None, 2.0)
        out.append(PredictionRecord(1, f"t{now}-{i}", now, live_score, candidates))
    return out


def probe_record() -> PredictionRecord:
    """A transaction without candidate scores: read and counted by the monitor, in no window."""
    now = time.time_ns() // 1_000_000
    return PredictionRecord(1, f"probe-{now}", now, LiveScore("live@1", 0.5, None, 2.0), [])


def shadow_models(settings: Settings, folder: Path) -> ModelRegistry:
    registry = ModelRegistry.from_settings(settings)
    model = write_tiny_model(folder / "tiny.onnx")
    for name in ("good", "const"):
        registry.register(model, name, "1")
        registry.transition(f"{name}@1", "shadow", actor="test", reason="start shadowing")
    return registry
