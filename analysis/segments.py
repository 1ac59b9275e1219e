"""Segments - the paired comparison per value of a feature (e.g. merchant category).

Each segment reuses the window-wide argsorts: grouping a model's score order by segment with one
stable integer sort keeps every segment sorted, so no segment is sorted again.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from analysis import ties
from analysis.grouped import compact
from analysis.labelled import roc_auc_sorted
from analysis.metrics import Sorted, psi_sorted


class SegmentOrder:
    """One model's rows grouped by segment, ascending score inside each segment: one stable
    integer sort of the codes along the model's score order, instead of a sort per segment."""

    def __init__(self, model: Sorted, codes: np.ndarray, segments: int) -> None:
        along = codes[model.order].astype(compact(segments), copy=False)
        group = np.argsort(along, kind="stable")  # a radix sort for 8/16-bit codes
        self.rows = model.order[group]
        self.values = model.sorted[group]
        self.bounds = np.searchsorted(along[group], np.arange(segments + 2))

    def part(self, code: int) -> tuple[np.ndarray, np.ndarray]:
        """Row ids and their scores (ascending) of one segment."""
        begin, end = self.bounds[code], self.bounds[code + 1]
        return self.rows[begin:end], self.values[begin:end]


def segment_metrics(
    codes: np.ndarray,
    names: list[str],
    live: Sorted,
    candidate: Sorted,
    labels: np.ndarray | None,
    threshold: float,
    min_rows: int,
    cache: dict | None = None,
) -> list[dict[str, Any]]:
    """Per segment (codes: 0 = no value, k = names[k-1]) with at least `min_rows` pairs."""
    shared = live_segments({} if cache is None else cache, live, codes, names)
    live_order, live_auc = shared["order"], shared["auc"]
    cand_order = SegmentOrder(candidate, codes, len(names))
    sums = _sums(codes, live, candidate, threshold, len(names) + 1)
    if labels is not None:
        sums.update(_label_sums(codes, labels, len(names) + 1))
    out = []
    for code in np.flatnonzero(sums["transactions"] >= min_rows).tolist():
        entry = {key: kind(values[code]) for key, (kind, values) in _fields(sums).items()}
        entry["psi"] = psi_sorted(live_order.part(code)[1], cand_order.part(code)[1])
        entry["segment"] = names[code - 1] if code > 0 else None
        if labels is not None:
            if code not in live_auc:
                live_auc[code] = _auc(live_order.part(code), labels)
            cand_auc = _auc(cand_order.part(code), labels)
            entry.update(live_roc_auc=live_auc[code], candidate_roc_auc=cand_auc)
            entry["roc_auc_delta"] = cand_auc - live_auc[code]
        out.append(entry)
    return sorted(out, key=lambda e: -e["transactions"])


def live_segments(cache: dict, live: Sorted, codes: np.ndarray, names: list[str]) -> dict:
    """Live's grouping by segment and its segment AUCs, shared by every candidate."""
    key = (id(live), tuple(names))
    if key not in cache:
        cache[key] = {"order": SegmentOrder(live, codes, len(names)), "auc": {}}
    return cache[key]


def _sums(codes: np.ndarray, live: Sorted, cand: Sorted, threshold: float, size: int) -> dict:
    """Per code: pairs, score sums, |delta| sum, flips, live's alerts and the candidate's
    share of them at the matched rate, one bincount pass each."""
    lv, cv = live.values, cand.values
    live_alert, cand_alert = lv >= threshold, cv >= threshold

    def total(weights=None) -> np.ndarray:
        return np.bincount(codes, weights, minlength=size)

    return {
        "transactions": total(),
        "live": total(lv),
        "candidate": total(cv),
        "abs_delta": total(np.abs(cv - lv)),
        "to_alert": np.bincount(codes[cand_alert & ~live_alert], minlength=size),
        "to_pass": np.bincount(codes[live_alert & ~cand_alert], minlength=size),
        "live_alerts": np.bincount(codes[live_alert], minlength=size),
        "shared": _shared_alerts(codes, live_alert, cand, size),
    }


def _shared_alerts(codes: np.ndarray, live_alert: np.ndarray, cand: Sorted, size: int):
    """Per code, the expected number of live's alerts the candidate raises too when it alerts
    on as many transactions of the window as live (the window's cut, ties shared): the
    window-wide alert overlap at the matched rate, split by segment."""
    k = int(np.count_nonzero(live_alert))
    if k == 0:
        return np.zeros(size)
    at = ties.cut(cand.sorted, k)
    picked = cand.values[live_alert]
    weight = (picked > at.value) + at.share * (picked == at.value)
    return np.bincount(codes[live_alert], weight, minlength=size)


def _label_sums(codes: np.ndarray, labels: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """Per code: labelled pairs and labelled frauds (the counts behind a segment's ROC-AUC)."""
    known = np.isfinite(labels)
    return {
        "labelled": np.bincount(codes[known], minlength=size),
        "positives": np.bincount(codes[known & (labels == 1)], minlength=size),
    }


def _fields(sums: dict) -> dict[str, tuple[type, np.ndarray]]:
    """The evidence fields of a segment from its sums (means are sums over pairs; the alert
    overlap is NaN in a segment where live raised no alert)."""
    n = np.maximum(sums["transactions"], 1)
    alerts = sums["live_alerts"]
    with np.errstate(invalid="ignore", divide="ignore"):
        overlap = np.where(alerts > 0, sums["shared"] / alerts, np.nan)
    counts = {key: (int, sums[key]) for key in ("labelled", "positives") if key in sums}
    return {
        **counts,
        "live_alerts": (int, alerts),
        "alert_overlap_at_matched_rate": (float, overlap),
        "transactions": (int, sums["transactions"]),
        "live_mean": (float, sums["live"] / n),
        "candidate_mean": (float, sums["candidate"] / n),
        "mean_abs_delta": (float, sums["abs_delta"] / n),
        "flips_to_alert": (int, sums["to_alert"]),
        "flips_to_pass": (int, sums["to_pass"]),
        "flip_rate": (float, (sums["to_alert"] + sums["to_pass"]) / n),
    }


def _auc(part: tuple[np.ndarray, np.ndarray], labels: np.ndarray) -> float:
    """ROC-AUC inside one segment from its rows in ascending score order (labelled rows only)."""
    rows, values = part
    seg_labels = labels[rows]
    known = np.isfinite(seg_labels)
    seg_labels, values = seg_labels[known], values[known]
    if len(seg_labels) == 0 or seg_labels.min() == seg_labels.max():
        return float("nan")
    return roc_auc_sorted(values[::-1], seg_labels[::-1])
