"""Segment tables - the paired comparison per value of a feature, worst segments first."""

from __future__ import annotations

import math
from typing import Any

from analysis.report.formats import count, number, share, signed
from analysis.report.page import Code, Section, Table, text

HEADER = (
    "segment",
    "transactions",
    "live alerts",
    "alert overlap",
    "flip rate",
    "flips to alert / to pass",
    "PSI",
    "ROC-AUC live / candidate",
    "AUC delta",
    "labelled / frauds",
)


def worst_first(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Lowest alert overlap at the matched rate first (segments where live raised no alert
    last), then the highest flip rate, then the largest volume."""

    def key(row: dict[str, Any]) -> tuple[float, float, float]:
        overlap = row.get("alert_overlap_at_matched_rate")
        if overlap is None or (isinstance(overlap, float) and math.isnan(overlap)):
            overlap = math.inf
        return (
            float(overlap),
            -(row.get("flip_rate") or 0.0),
            -(row.get("transactions") or 0),
        )

    return sorted(rows, key=key)


def segment_section(feature: str, rows: list[dict[str, Any]]) -> Section:
    cells = tuple(_cells(row) for row in worst_first(rows))
    note = text(
        "Worst first: lowest alert overlap (the candidate at live's alert rate, cut over the "
        "whole window), then highest flip rate. Segments with fewer pairs than "
        "analysis.min_segment_rows are left out."
    )
    return Section(text("Segments by ", Code(feature)), [Table(HEADER, cells, note)])


def _cells(row: dict[str, Any]) -> tuple[Any, ...]:
    segment = row.get("segment")
    name = Code(str(segment)) if segment is not None else "(no value)"
    labelled = row.get("labelled")
    return (
        name,
        count(row.get("transactions")),
        count(row.get("live_alerts")),
        number(row.get("alert_overlap_at_matched_rate"), "{:.3f}"),
        share(row.get("flip_rate"), 3),
        f"{count(row.get('flips_to_alert'))} / {count(row.get('flips_to_pass'))}",
        number(row.get("psi")),
        f"{number(row.get('live_roc_auc'))} / {number(row.get('candidate_roc_auc'))}",
        signed(row.get("roc_auc_delta")),
        "no labels" if labelled is None else f"{count(labelled)} / {count(row.get('positives'))}",
    )
