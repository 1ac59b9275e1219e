"""`shadow monitor` on the real broker: it fails a constant candidate, spares a good one, and
keeps its windows across a restart (changelog)."""

from __future__ import annotations

import json
import random
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
from shadow.dev.process import free_port
from shadow.envelope import CandidateScore, LiveScore, PredictionRecord
from shadow.reference_models import write_tiny_model
from shadow.registry import ModelRegistry
from shadow.settings import Settings

pytestmark = pytest.mark.integration

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


def shadow_models(settings: Settings, folder: Path) -> ModelRegistry:
    registry = ModelRegistry.from_settings(settings)
    model = write_tiny_model(folder / "tiny.onnx")
    for name in ("good", "const"):
        registry.register(model, name, "1")
        registry.transition(f"{name}@1", "shadow", actor="test", reason="start shadowing")
    return registry


def test_monitor_fails_a_constant_candidate_and_spares_a_good_one(
    settings_for: Any, unique_topic: Any, running: Any, tmp_path: Path
) -> None:
    settings = monitor_settings(settings_for, unique_topic)
    registry = shadow_models(settings, tmp_path)
    monitor = running(settings)
    publisher = PredictionPublisher.from_settings(settings)
    rng = random.Random(5)

    def const_failed() -> bool:
        publisher.send(records(40, rng))  # ~160 records a second
        time.sleep(0.25)
        return registry.get("const@1").state == "failed"

    started = time.monotonic()
    monitor.wait_for(const_failed, 60, "const@1 failed in the registry")
    elapsed = time.monotonic() - started
    assert publisher.close() == 0
    # two judged 2 s windows, plus grace and the judge's tick: well under 15 s
    assert elapsed < 15
    assert registry.get("good@1").state == "shadow"
    event = registry.history("const@1")[-1]
    assert (event.actor, event.to_state) == ("shadow-monitor", "failed")
    assert event.reason.startswith("early warning: psi > 1 in 2 window(s) in a row")
    evidence = json.loads(event.evidence or "{}")
    assert len(evidence["windows"]) == 2
    assert all(w["psi"] > 1.0 and w["count"] >= 20 for w in evidence["windows"])
    doc = monitor.windows()
    assert doc["breached"] == ["const@1"]
    good = [w for w in doc["models"]["good@1"] if w["closed"]]
    assert good and all(w["agreement"] > 0.9 and w["psi"] < 0.5 for w in good)
    metrics = urllib.request.urlopen(
        f"http://127.0.0.1:{settings.monitor.web_port}/metrics", timeout=5
    ).read()
    assert b'shadow_monitor_breaches_total{metric="psi",model_id="const@1"} 1.0' in metrics
    registry.close()


def test_monitor_restarts_without_losing_its_windows(
    settings_for: Any, unique_topic: Any, running: Any
) -> None:
    settings = monitor_settings(settings_for, unique_topic, fail_candidates=False)
    monitor = running(settings)
    publisher = PredictionPublisher.from_settings(settings)
    rng = random.Random(9)
    publisher.send(records(300, rng))
    assert publisher.close() == 0
    expected = {"good@1": 300.0, "const@1": 300.0}
    monitor.wait_for(lambda: monitor.totals() == expected, 30, "300 records folded")
    monitor.stop()

    monitor.start()
    # the table is rebuilt from its changelog; offsets were committed, so nothing is re-read
    monitor.wait_for(lambda: monitor.totals() == expected, 60, "the windows after restart")
    publisher.send(records(200, rng))
    assert publisher.close() == 0
    after = {"good@1": 500.0, "const@1": 500.0}
    monitor.wait_for(lambda: monitor.totals() == after, 30, "500 records after restart")
    time.sleep(2)
    assert monitor.totals() == after
