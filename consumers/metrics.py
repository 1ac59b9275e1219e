"""WorkerMetrics - the worker's Prometheus metrics, in a registry of its own.

The names are a contract: compose/grafana's dashboard and compose/prometheus/alerts.yml query
them, and tests/integration/test_metric_names.py fails when one of those queries names a metric
a running worker does not expose. Every series a query needs exists from the start (at zero):
the DLQ counter for every reason, and the per-model series as soon as a model is loaded.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from shadow.envelope import REASONS

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_FLUSH_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class WorkerMetrics:
    """Counters, histograms and gauges of one worker; ``text()`` is the /metrics body."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.consumed = Counter("shadow_worker_consumed", "Records consumed.", registry=r)
        self.scored_rows = Counter(
            "shadow_worker_scored", "Transactions scored, per model.", ["model_id"], registry=r
        )
        self.model_errors = Counter(
            "shadow_worker_model_errors",
            "Batches a model failed to score.",
            ["model_id"],
            registry=r,
        )
        self.model_timeouts = Counter(
            "shadow_worker_model_timeouts",
            "Batches a model did not score within worker.model_timeout_ms (ended by the watchdog).",
            ["model_id"],
            registry=r,
        )
        self.commit_failures = Counter(
            "shadow_worker_commit_failures",
            "Commits of a stored batch that failed and were retried (the object is not rewritten).",
            registry=r,
        )
        self.dlq = Counter(
            "shadow_worker_dlq", "Records sent to the dead-letter topic.", ["reason"], registry=r
        )
        self.scoring_seconds = Histogram(
            "shadow_worker_scoring_seconds",
            "Wall time of one model scoring one consumed batch.",
            ["model_id"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.flush_seconds = Histogram(
            "shadow_worker_flush_seconds",
            "Encode + put of one partition batch.",
            buckets=_FLUSH_BUCKETS,
            registry=r,
        )
        self.flush_failures = Counter(
            "shadow_worker_flush_failures", "Flushes that failed and were retried.", registry=r
        )
        self.commit_lag = Gauge(
            "shadow_worker_commit_lag",
            "Records in the partition not yet committed (high watermark - committed).",
            ["topic", "partition"],
            registry=r,
        )
        self.models_loaded = Gauge(
            "shadow_worker_models_loaded", "Candidate models loaded.", registry=r
        )
        self.paused = Gauge(
            "shadow_worker_paused_partitions", "Partitions paused by store failures.", registry=r
        )
        self.assigned = Gauge(
            "shadow_worker_assigned_partitions", "Partitions assigned to this worker.", registry=r
        )
        for reason in REASONS:
            self.dlq.labels(reason)

    def track_model(self, model_id: str) -> None:
        """Create a loaded model's series at zero, so rates and alerts see it from the start."""
        self.scored_rows.labels(model_id)
        self.model_errors.labels(model_id)
        self.scoring_seconds.labels(model_id)

    def scored(self, model_id: str, rows: int, seconds: float) -> None:
        self.scored_rows.labels(model_id).inc(rows)
        self.scoring_seconds.labels(model_id).observe(seconds)

    def text(self) -> bytes:
        return generate_latest(self.registry)
