"""The PromQL the dashboard and the alert rules run, and the metric names it selects (no tests
here): compose/grafana/dashboards/shadow.json and compose/prometheus/alerts.yml."""

from __future__ import annotations

import json
from pathlib import Path

import promql_parser
import yaml

ROOT = Path(__file__).parents[1]
DASHBOARD = ROOT / "compose" / "grafana" / "dashboards" / "shadow.json"
ALERTS = ROOT / "compose" / "prometheus" / "alerts.yml"

FROM_PROMETHEUS = {"up"}
"""Series Prometheus itself writes for every scrape target, not a metric of ours."""


def dashboard_queries() -> dict[str, str]:
    """'panel title / refId' -> PromQL, for every target of every panel."""
    dashboard = json.loads(DASHBOARD.read_text())
    return {
        f"{panel['title']} / {target['refId']}": target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    }


def alert_queries() -> dict[str, str]:
    """alert name -> PromQL."""
    spec = yaml.safe_load(ALERTS.read_text())
    return {rule["alert"]: rule["expr"] for group in spec["groups"] for rule in group["rules"]}


def metric_names(expr: str) -> set[str]:
    """Every metric name the expression selects, read from its syntax tree."""
    names: set[str] = set()

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name is None:
                raise AssertionError(f"select metrics by name, not by matchers only: {expr}")
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def queried_metrics() -> dict[str, set[str]]:
    """metric name -> where it is queried (dashboard panels and alerts), ours only."""
    where: dict[str, set[str]] = {}
    for source, queries in (("dashboard", dashboard_queries()), ("alerts", alert_queries())):
        for name, expr in queries.items():
            for metric in metric_names(expr) - FROM_PROMETHEUS:
                where.setdefault(metric, set()).add(f"{source}: {name}")
    return where
