"""One source of metric names: every metric the Grafana dashboard and the alert rules query is
exposed by a real worker and a real monitor once records of each kind have flowed."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from monitor_support import monitor_settings, running
from monitoring_queries import queried_metrics
from prometheus_client.parser import text_string_to_metric_families
from worker_support import (
    AmountScorer,
    WorkerThread,
    all_committed,
    produce,
    static_candidates,
    wait_until,
)

from consumers.http import WorkerHttp
from consumers.probes import WorkerProbes
from consumers.worker import ShadowWorker
from shadow.envelope import REASONS, LiveScore, encode, make_envelope
from shadow.kit.synthetic import TransactionGenerator, feature_dicts

pytestmark = pytest.mark.integration

__all__ = ["running"]  # the fixture, imported so pytest finds it here


def scrape(url: str) -> dict[str, list[Any]]:
    """Sample name (with _total, _bucket... suffixes) -> its samples."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    samples: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def fresh_records(n: int) -> list[tuple[bytes, bytes]]:
    """n good envelopes stamped now (the monitor's windows go by event time)."""
    now = time.time_ns() // 1_000_000
    rows = feature_dicts(TransactionGenerator(5).batch(n))
    out = []
    for i, features in enumerate(rows):
        txn = f"m-{now}-{i}"
        envelope = make_envelope(txn, features, LiveScore("fraud@7", 0.2, "pass", 1.5), now)
        out.append((txn.encode(), encode(envelope)))
    return out


def test_every_metric_the_dashboard_and_the_alerts_query_is_exposed(
    kafka_bootstrap: str, unique_topic: Any, settings_for: Any, running: Any, tmp_path: Path
) -> None:
    settings = monitor_settings(settings_for, unique_topic, fail_candidates=False, min_count=1)
    topic = unique_topic(2)
    worker_conf = {"flush_seconds": 1.0, "http_port": 0, "group_id": f"g-{topic}"}
    settings = settings.model_copy(
        update={
            "kafka": settings.kafka.model_copy(update={"topic": topic}),
            "worker": settings.worker.model_copy(update=worker_conf),
        }
    )
    flaky = AmountScorer("flaky@1", fail_every=1)  # a model error on every batch
    worker = ShadowWorker(settings, static_candidates(settings, AmountScorer("good@1"), flaky))
    probes = WorkerProbes(worker)
    http = WorkerHttp(0, worker.metrics.text, worker.health, worker.models, probes.liveness)
    http.start()
    url = f"http://127.0.0.1:{http.port}/metrics"
    try:
        before = scrape(url)  # counters exist from the start, at zero
        assert {s.labels["reason"] for s in before["shadow_worker_dlq_total"]} == set(REASONS)
        assert all(s.value == 0 for s in before["shadow_worker_dlq_total"])
        assert before["shadow_worker_consumed_total"][0].value == 0
        assert before["shadow_worker_flush_failures_total"][0].value == 0

        running(settings)
        thread = WorkerThread(worker).start()
        produce(kafka_bootstrap, topic, [*fresh_records(300), (b"bad", b"not json")])
        wait_until(all_committed(kafka_bootstrap, f"g-{topic}", topic, 2), 60, "all committed")
        monitor_url = f"http://127.0.0.1:{settings.monitor.web_port}/metrics"
        wait_until(
            lambda: "shadow_monitor_window_psi" in scrape(monitor_url), 60, "a closed window"
        )
        exposed = {**scrape(monitor_url), **scrape(url)}
        thread.stop()
    finally:
        http.stop()
    missing = {m: sorted(w) for m, w in queried_metrics().items() if m not in exposed}
    assert not missing, f"queried but not exposed: {missing}"
    lag = exposed["shadow_worker_commit_lag"]
    assert {(s.labels["topic"], s.labels["partition"]) for s in lag} == {(topic, "0"), (topic, "1")}
    dlq = {s.labels["reason"]: s.value for s in exposed["shadow_worker_dlq_total"]}
    assert dlq["not_json"] == 1
    errors = {s.labels["model_id"]: s.value for s in exposed["shadow_worker_model_errors_total"]}
    assert errors["flaky@1"] >= 1 and errors["good@1"] == 0
    breaches = exposed["shadow_monitor_breaches_total"]
    assert {s.labels["model_id"] for s in breaches} >= {"good@1", "flaky@1"}
