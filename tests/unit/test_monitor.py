"""Monitor without Faust: window figures, rules (pure), and the monitor over a plain dict table."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from consumers.monitor.rules import Breach, JudgedWindow, breaches, closed_windows
from consumers.monitor.shadow_monitor import ShadowMonitor, parse_key, table_key
from consumers.monitor.windows import (
    WindowStats,
    decode_stats,
    encode_stats,
    figures,
    fold,
    latency_quantile,
    merge,
    observe,
    psi,
)
from shadow.envelope import CandidateScore, LiveScore, PredictionRecord
from shadow.errors import RegistryError, RegistryUnavailable
from shadow.settings import MonitorRule, MonitorSettings

W = 2_000  # window ms in these tests
T0 = 1_767_225_600_000


def _records(n: int, start: int, seed: int = 1, const: float = 0.5) -> list[PredictionRecord]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        live = rng.random() ** 3
        good = min(1.0, max(0.0, live + rng.gauss(0, 0.02)))
        out.append(
            PredictionRecord(
                1,
                f"t{seed}-{i}",
                start + i * (W // n),
                LiveScore("live@1", live, None, 2.0),
                [
                    CandidateScore("good@1", good, None, 40.0 + rng.random() * 10),
                    CandidateScore("const@1", const, None, 30.0),
                ],
            )
        )
    return out


def test_figures_of_a_window() -> None:
    stats = WindowStats()
    for score, error, live in [(0.9, None, 0.8), (0.1, None, 0.7), (None, "boom", 0.1)]:
        observe(stats, score, error, 100.0, live, 0.5)
    observe(stats, float("nan"), None, 100.0, 0.2, 0.5)
    got = figures(stats)
    assert got["count"] == 4
    assert got["error_rate"] == pytest.approx(0.25)
    assert got["nan_rate"] == pytest.approx(0.25)
    assert got["mean_score"] == pytest.approx(0.5)
    assert got["agreement"] == pytest.approx(0.5)  # 0.9 vs 0.8 agree, 0.1 vs 0.7 do not
    assert got["p99_latency_us"] == pytest.approx(100.0, rel=0.1)


def test_psi_is_zero_for_the_same_distribution_and_large_for_a_constant() -> None:
    live = [10, 20, 30, 40, 50, 50, 40, 30, 20, 10]
    assert psi(live, live) == pytest.approx(0.0)
    assert psi(live, [0, 0, 0, 0, 0, 300, 0, 0, 0, 0]) > 5.0
    assert psi([0] * 10, live) is None


def test_latency_p99_from_the_sketch_within_ten_percent() -> None:
    rng = random.Random(3)
    samples = [rng.lognormvariate(4, 0.5) for _ in range(20_000)]
    stats = WindowStats()
    for value in samples:
        observe(stats, 0.5, None, value, 0.5, 0.5)
    exact = sorted(samples)[int(0.99 * len(samples))]
    assert latency_quantile(stats.latency, 0.99) == pytest.approx(exact, rel=0.1)


def test_windows_merge_by_addition_and_round_trip_as_bytes() -> None:
    records = _records(200, T0)
    whole = fold(records, W, 0.5)
    halves = [fold(records[:77], W, 0.5), fold(records[77:], W, 0.5)]
    merged = merge(merge(WindowStats(), halves[0][("good@1", T0)]), halves[1][("good@1", T0)])
    assert figures(merged) == pytest.approx(figures(whole[("good@1", T0)]))
    assert decode_stats(encode_stats(merged)) == merged
    assert decode_stats(None) == WindowStats()


def _window(model: str, i: int, **values: float) -> JudgedWindow:
    base = {"count": 100.0, "error_rate": 0.0, "nan_rate": 0.0, "agreement": 0.9, "psi": 0.01}
    return JudgedWindow(model, T0 + i * W, T0 + (i + 1) * W, {**base, **values})


ERRORS = MonitorRule(metric="error_rate", op=">", threshold=0.05, windows=3)
AGREEMENT = MonitorRule(metric="agreement", op="<", threshold=0.5, windows=2)


def test_a_rule_needs_its_number_of_windows_in_a_row() -> None:
    two_bad = [
        _window("m@1", 0),
        _window("m@1", 1, error_rate=0.2),
        _window("m@1", 2, error_rate=0.3),
    ]
    assert breaches({"m@1": two_bad}, [ERRORS], min_count=10) == []
    three_bad = [*two_bad, _window("m@1", 3, error_rate=0.1)]
    found = breaches({"m@1": three_bad}, [ERRORS], min_count=10)
    assert [(b.model_id, b.rule.metric) for b in found] == [("m@1", "error_rate")]
    assert [w.figures["error_rate"] for w in found[0].windows] == [0.2, 0.3, 0.1]


def test_a_recovered_candidate_and_small_windows_are_not_failed() -> None:
    recovered = [_window("m@1", i, error_rate=0.5) for i in range(3)] + [_window("m@1", 3)]
    assert breaches({"m@1": recovered}, [ERRORS], min_count=10) == []
    small = [_window("m@1", i, error_rate=0.5, count=5.0) for i in range(4)]
    assert breaches({"m@1": small}, [ERRORS], min_count=10) == []


def test_a_missing_figure_never_breaches() -> None:
    # type: ignore below: a figure that is None, on purpose
    windows = [_window("m@1", i, agreement=None) for i in range(3)]  # type: ignore[arg-type]
    assert breaches({"m@1": windows}, [AGREEMENT], min_count=10) == []


def test_breach_reason_and_evidence_carry_the_window_figures() -> None:
    windows = [_window("m@1", i, agreement=0.2) for i in range(2)]
    (breach,) = breaches({"m@1": windows}, [AGREEMENT], min_count=10)
    assert breach.reason == "agreement < 0.5 in 2 window(s) in a row (0.2, 0.2)"
    evidence = json.loads(breach.evidence())
    assert evidence["rule"]["metric"] == "agreement"
    assert [w["start_ms"] for w in evidence["windows"]] == [T0, T0 + W]
    assert evidence["windows"][0]["agreement"] == 0.2


def test_only_windows_past_end_and_grace_are_closed() -> None:
    tallies = fold(_records(100, T0) + _records(100, T0 + W, seed=2), W, 0.5)
    history = closed_windows(tallies, now_ms=T0 + 2 * W + 500, window_ms=W, grace_ms=1000)
    assert [w.start_ms for w in history["good@1"]] == [T0]
    history = closed_windows(tallies, now_ms=T0 + 3 * W + 1000, window_ms=W, grace_ms=1000)
    assert [w.start_ms for w in history["good@1"]] == [T0, T0 + W]


def _conf(**changes: object) -> MonitorSettings:
    rules = [MonitorRule(metric="psi", op=">", threshold=1.0, windows=2)]
    values = {"window_seconds": 2, "grace_seconds": 1, "min_count": 50, "rules": rules}
    return MonitorSettings(**{**values, **changes})


def test_monitor_fails_the_constant_candidate_once_and_never_the_good_one() -> None:
    failed: list[Breach] = []
    monitor = ShadowMonitor(_conf(), {}, failed.append)
    for i in range(3):
        monitor.absorb(_records(300, T0 + i * W, seed=i))
    assert monitor.judge(now_ms=T0 + W + 1000) == []  # one closed window only
    found = monitor.judge(now_ms=T0 + 2 * W + 1000)
    assert [b.model_id for b in found] == ["const@1"]
    assert monitor.act(found[0]) is True
    assert [b.model_id for b in failed] == ["const@1"]
    assert monitor.judge(now_ms=T0 + 3 * W + 1000) == []  # acted on: not again
    assert b'shadow_monitor_breaches_total{metric="psi",model_id="const@1"} 1.0' in (
        monitor.metrics.text()
    )


def test_a_transient_registry_error_is_retried_an_illegal_move_is_not() -> None:
    def unavailable(_breach: Breach) -> None:
        raise RegistryUnavailable("registry down")

    def illegal(_breach: Breach) -> None:
        raise RegistryError("model const@1 is failed: it cannot move to failed")

    for hook, settled in [(unavailable, False), (illegal, True)]:
        monitor = ShadowMonitor(_conf(), {}, hook)
        for i in range(2):
            monitor.absorb(_records(300, T0 + i * W, seed=i))
        (breach,) = monitor.judge(now_ms=T0 + 2 * W + 1000)
        assert monitor.act(breach) is settled
        assert bool(monitor.judge(now_ms=T0 + 2 * W + 1000)) is not settled


def test_the_table_holds_one_value_per_candidate_and_window_and_old_ones_expire() -> None:
    table: dict[str, bytes] = {}
    monitor = ShadowMonitor(_conf(keep_windows=2), table)
    for i in range(4):
        monitor.absorb(_records(60, T0 + i * W, seed=i))
    assert sorted(table) == sorted(
        table_key(m, T0 + i * W) for m in ("good@1", "const@1") for i in range(4)
    )
    assert parse_key(table_key("fraud@v1|x", 7)) == ("fraud@v1|x", 7)
    assert monitor.expire(now_ms=T0 + 4 * W) == 4
    doc = monitor.windows(now_ms=T0 + 4 * W)
    assert [w["start_ms"] for w in doc["models"]["good@1"]] == [T0 + 3 * W, T0 + 2 * W]
    assert doc["models"]["good@1"][0]["count"] == 60
    assert doc["models"]["good@1"][0]["closed"] is False


def test_a_disabled_fail_hook_only_logs(caplog: pytest.LogCaptureFixture) -> None:
    failed: list[Breach] = []
    monitor = ShadowMonitor(_conf(fail_candidates=False), {}, failed.append)
    for i in range(2):
        monitor.absorb(_records(300, T0 + i * W, seed=i))
    (breach,) = monitor.judge(now_ms=T0 + 2 * W + 1000)
    with caplog.at_level("ERROR"):
        monitor.act(breach)
    assert failed == []
    assert "model const@1 breached an early-warning rule: psi > 1" in caplog.text


def test_shadow_monitor_without_a_predictions_topic_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHADOW")}
    shadow = str(Path(sys.executable).parent / "shadow")
    done = subprocess.run(
        [shadow, "monitor"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: setting worker.predictions_topic: not set: the monitor reads the topic the "
        "workers publish prediction records to"
    ]
