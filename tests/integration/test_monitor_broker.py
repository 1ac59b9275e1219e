"""`shadow monitor` on the real broker: it fails a constant candidate, spares a good one, and
keeps its windows across a restart (changelog)."""

from __future__ import annotations

import json
import random
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from monitor_support import monitor_settings, records, running, shadow_models

from consumers.publisher import PredictionPublisher

pytestmark = pytest.mark.integration

__all__ = ["running"]  # the fixture, imported so pytest finds it here


def test_monitor_fails_a_constant_candidate_and_spares_a_good_one(
    settings_for: Any, unique_topic: Any, running: Any, tmp_path: Path
) -> None:
    settings = monitor_settings(settings_for, unique_topic)
    registry = shadow_models(settings, tmp_path)
    monitor = running(settings)
    publisher = PredictionPublisher.from_settings(settings)
    # windows are judged by the wall clock: traffic only once the monitor's consumer reads
    monitor.wait_until_consuming(publisher)
    rng = random.Random(5)

    def const_failed() -> bool:
        # ~80 records a second: 40, then 0.25 s here and 0.25 s in wait_for
        publisher.send(records(40, rng))
        time.sleep(0.25)
        return registry.get("const@1").state == "failed"

    monitor.wait_for(const_failed, 60, "const@1 failed in the registry")
    assert publisher.close() == 0
    assert registry.get("good@1").state == "shadow"
    event = registry.history("const@1")[-1]
    assert (event.actor, event.to_state) == ("shadow-monitor", "failed")
    assert event.reason.startswith("early warning: psi > 1 in 2 window(s) in a row")
    evidence = json.loads(event.evidence or "{}")
    assert len(evidence["windows"]) == 2
    assert all(w["psi"] > 1.0 and w["count"] >= 20 for w in evidence["windows"])
    doc = monitor.windows()
    assert doc["breached"] == ["const@1"]
    # its evidence is two judged windows in a row (none judged between them), both breaching
    min_count = settings.monitor.min_count
    judged = sorted(w["start_ms"] for w in doc["models"]["const@1"] if w["count"] >= min_count)
    first, second = (w["start_ms"] for w in evidence["windows"])
    assert first in judged and judged[judged.index(first) + 1] == second
    # the good model is judged where the rules judge: closed windows with enough records
    good = [w for w in doc["models"]["good@1"] if w["closed"] and w["count"] >= min_count]
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
