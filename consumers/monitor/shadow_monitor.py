"""ShadowMonitor - live early warning: window tallies per candidate, rules, failing in the registry.

The Faust wiring (consumers.monitor.app) feeds ``absorb`` from the predictions topic, keeps the
tallies in a changelog-backed table (a plain mapping here, so this class runs without Faust),
and calls ``judge`` on a timer. Table keys are ``"<model_id>|<window start ms>"``, values the
msgpack bytes of a WindowStats.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any

from consumers.monitor.rules import Breach, breaches, closed_windows
from consumers.monitor.windows import (
    FIGURES,
    WindowStats,
    decode_stats,
    encode_stats,
    figures,
    fold,
    merge,
)
from shadow.envelope import PredictionRecord
from shadow.errors import ShadowError
from shadow.settings import MonitorSettings

logger = logging.getLogger(__name__)

ACTOR = "shadow-monitor"

FailHook = Callable[[Breach], None]
"""Records a breach, e.g. moves the candidate shadow -> failed in the registry."""


def table_key(model_id: str, start_ms: int) -> str:
    return f"{model_id}|{start_ms}"


def parse_key(key: str) -> tuple[str, int]:
    model_id, _, start = key.rpartition("|")
    return model_id, int(start)


class MonitorMetrics:
    """Prometheus figures of each candidate's latest closed window, and the monitor's counters."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge

        self.registry = CollectorRegistry()
        self.records = Counter(
            "shadow_monitor_records", "Prediction records folded", registry=self.registry
        )
        self.bad_records = Counter(
            "shadow_monitor_bad_records", "Records that did not decode", registry=self.registry
        )
        self.breaches = Counter(
            "shadow_monitor_breaches",
            "Rule breaches acted on",
            ["model_id", "metric"],
            registry=self.registry,
        )
        self.figures = {
            name: Gauge(
                f"shadow_monitor_window_{name}",
                f"{name} of the candidate's latest closed window",
                ["model_id"],
                registry=self.registry,
            )
            for name in FIGURES
        }

    def show(
        self, model_id: str, window: dict[str, float | None], rule_metrics: Iterable[str] = ()
    ) -> None:
        """The candidate's latest closed window; its breach counters start at zero, so an
        alert on their increase sees the first breach."""
        for metric in rule_metrics:
            self.breaches.labels(model_id, metric)
        for name, gauge in self.figures.items():
            value = window.get(name)
            gauge.labels(model_id).set(float("nan") if value is None else value)

    def text(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


class ShadowMonitor:
    """Folds prediction records into window tallies and fails candidates that break a rule."""

    def __init__(
        self,
        conf: MonitorSettings,
        table: MutableMapping[str, bytes],
        fail: FailHook | None = None,
        metrics: MonitorMetrics | None = None,
    ) -> None:
        self.conf = conf
        self.table = table
        self.fail = fail
        self.metrics = metrics or MonitorMetrics()
        self.window_ms = int(conf.window_seconds * 1000)
        self.grace_ms = int(conf.grace_seconds * 1000)
        self.acted: set[str] = set()
        self._rule_metrics = sorted({rule.metric for rule in conf.rules})

    def absorb(self, records: Iterable[PredictionRecord]) -> int:
        """Add a batch of records to the table: one table write per (candidate, window)."""
        records = list(records)
        for (model_id, start), delta in fold(
            records, self.window_ms, self.conf.live_threshold
        ).items():
            key = table_key(model_id, start)
            self.table[key] = encode_stats(merge(decode_stats(self.table.get(key)), delta))
        self.metrics.records.inc(len(records))
        return len(records)

    def expire(self, now_ms: int) -> int:
        """Delete windows older than keep_windows (their changelog entries are tombstoned)."""
        oldest = now_ms - self.conf.keep_windows * self.window_ms
        stale = [key for key in list(self.table.keys()) if parse_key(key)[1] < oldest]
        for key in stale:
            del self.table[key]
        return len(stale)

    def tallies(self) -> dict[tuple[str, int], WindowStats]:
        return {parse_key(key): decode_stats(value) for key, value in list(self.table.items())}

    def windows(self, now_ms: int | None = None) -> dict[str, Any]:
        """Every kept window per candidate, newest first (the /shadow/windows/ document)."""
        now_ms = _now_ms() if now_ms is None else now_ms
        models: dict[str, list[dict[str, Any]]] = {}
        for (model_id, start), stats in sorted(self.tallies().items(), key=lambda i: -i[0][1]):
            end = start + self.window_ms
            models.setdefault(model_id, []).append(
                {
                    "start_ms": start,
                    "end_ms": end,
                    "closed": end + self.grace_ms <= now_ms,
                    **figures(stats),
                }
            )
        return {
            "window_seconds": self.conf.window_seconds,
            "live_threshold": self.conf.live_threshold,
            "breached": sorted(self.acted),
            "models": models,
        }

    def judge(self, now_ms: int | None = None) -> list[Breach]:
        """Closed windows against the rules; returns the breaches not acted on before."""
        now_ms = _now_ms() if now_ms is None else now_ms
        history = closed_windows(self.tallies(), now_ms, self.window_ms, self.grace_ms)
        for model_id, judged in history.items():
            self.metrics.show(model_id, judged[-1].figures, self._rule_metrics)
        return [
            breach
            for breach in breaches(history, self.conf.rules, self.conf.min_count)
            if breach.model_id not in self.acted
        ]

    def act(self, breach: Breach) -> bool:
        """Log the breach and record it; True when it is settled (done, or refused for good)."""
        logger.error("model %s breached an early-warning rule: %s", breach.model_id, breach.reason)
        self.metrics.breaches.labels(breach.model_id, breach.rule.metric).inc()
        if self.fail is not None and self.conf.fail_candidates:
            try:
                self.fail(breach)
            except ShadowError as exc:
                if exc.transient:
                    logger.warning("model %s not failed yet, will retry: %s", breach.model_id, exc)
                    return False
                logger.warning("model %s not moved to failed: %s", breach.model_id, exc)
        self.acted.add(breach.model_id)
        return True


def registry_fail_hook(settings: Any) -> FailHook:
    """Move the breaching candidate shadow -> failed, with the window figures as evidence."""

    def fail(breach: Breach) -> None:
        from shadow.registry import ModelRegistry

        registry = ModelRegistry.from_settings(settings)
        try:
            state = registry.get(breach.model_id).state
            if state != "shadow":
                # e.g. failed already before a monitor restart: nothing left to do
                logger.info("model %s is %s, not in shadow: left as it is", breach.model_id, state)
                return
            registry.transition(
                breach.model_id,
                "failed",
                actor=ACTOR,
                reason=f"early warning: {breach.reason}",
                evidence=breach.evidence(),
            )
        finally:
            registry.close()
        logger.info("model %s moved shadow -> failed by the monitor", breach.model_id)

    return fail


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
