"""Alert rules and dashboard queries, checked by promtool (`make install` puts it in .venv)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from monitoring_queries import ALERTS, DASHBOARD, alert_queries, dashboard_queries, metric_names


def promtool() -> str:
    """$SHADOW_PROMTOOL, else the one `make install` unpacked into the venv, else PATH's."""
    for candidate in (
        os.environ.get("SHADOW_PROMTOOL"),
        str(Path(sys.prefix) / "tools" / "promtool"),
        shutil.which("promtool"),
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    raise AssertionError("promtool not found: run `make install` (bash .ci/promtool .venv/tools)")


def check_rules(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), "check", "rules", str(path)], capture_output=True, text=True, check=False
    )


def test_the_alert_rules_pass_promtool() -> None:
    done = check_rules(ALERTS)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(alert_queries())} rules found" in done.stdout


def test_promtool_refuses_a_broken_rule(tmp_path: Path) -> None:
    """The check above means something: a query that does not parse fails it."""
    spec = yaml.safe_load(ALERTS.read_text())
    spec["groups"][0]["rules"][0]["expr"] = (
        "sum by (instance (rate(shadow_worker_consumed_total[5m])"
    )
    broken = tmp_path / "alerts.yml"
    broken.write_text(yaml.safe_dump(spec))
    done = check_rules(broken)
    assert done.returncode != 0
    assert "FAILED" in done.stdout + done.stderr


def test_every_dashboard_query_passes_promtool(tmp_path: Path) -> None:
    """Each panel's query, as a recording rule, through the same parser Prometheus uses."""
    queries = dashboard_queries()
    rules = [{"record": f"dashboard:query_{i}", "expr": e} for i, e in enumerate(queries.values())]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = check_rules(path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(queries)} rules found" in done.stdout


def test_the_rules_cover_what_an_operator_pages_on() -> None:
    covered = {name: metric_names(expr) for name, expr in alert_queries().items()}
    assert covered["ShadowWorkerDown"] == {"up"}
    assert covered["ShadowLagGrowing"] == {"shadow_worker_commit_lag"}
    assert {"shadow_worker_dlq_total", "shadow_worker_consumed_total"} <= covered[
        "ShadowDeadLetterShareHigh"
    ]
    assert "shadow_worker_model_errors_total" in covered["ShadowModelErrorRate"]
    assert covered["ShadowFlushFailing"] == {"shadow_worker_flush_failures_total"}
    assert covered["ShadowPartitionsPaused"] == {"shadow_worker_paused_partitions"}
    assert covered["ShadowCandidateFailedByMonitor"] == {"shadow_monitor_breaches_total"}


def test_the_dashboard_has_the_panels_an_operator_needs() -> None:
    selected = set().union(*(metric_names(e) for e in dashboard_queries().values()))
    for metric in (
        "shadow_worker_consumed_total",
        "shadow_worker_scored_total",
        "shadow_worker_commit_lag",
        "shadow_worker_scoring_seconds_bucket",
        "shadow_worker_model_errors_total",
        "shadow_worker_dlq_total",
        "shadow_worker_flush_seconds_bucket",
        "shadow_worker_flush_failures_total",
        "shadow_worker_paused_partitions",
        "shadow_worker_models_loaded",
        "shadow_monitor_window_agreement",
        "shadow_monitor_window_psi",
        "shadow_monitor_window_error_rate",
    ):
        assert metric in selected, metric
    dashboard = json.loads(DASHBOARD.read_text())
    sources = {t["datasource"]["uid"] for p in dashboard["panels"] for t in p.get("targets", [])}
    assert sources == {"prometheus"}  # the uid compose provisions the data source with
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


@pytest.mark.parametrize("expr", ["rate(x[5m]", "sum by (le) (", "up{job=}"])
def test_the_query_reader_refuses_what_prometheus_refuses(expr: str) -> None:
    with pytest.raises(ValueError):
        metric_names(expr)
