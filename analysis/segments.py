"""Segments - the paired comparison per value of a feature (e.g. merchant category).

Each segment reuses the window-wide argsorts: filtering a global order by segment keeps it
sorted, so no segment is sorted again.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from analysis.labelled import point_metrics
from analysis.metrics import Sorted, psi_sorted


def segment_metrics(
    codes: np.ndarray,
    names: list[str],
    live: Sorted,
    candidate: Sorted,
    labels: np.ndarray | None,
    threshold: float,
    min_rows: int,
) -> list[dict[str, Any]]:
    """Per segment (codes: 0 = no value, k = names[k-1]) with at least `min_rows` pairs."""
    counts = np.bincount(codes, minlength=len(names) + 1)
    out = []
    for code in np.flatnonzero(counts >= min_rows):
        member = codes == code
        rows = np.flatnonzero(member)
        entry = _segment(rows, member, live, candidate, threshold)
        entry["segment"] = names[code - 1] if code > 0 else None
        if labels is not None:
            entry.update(_auc(rows, member, live, candidate, labels))
        out.append(entry)
    return sorted(out, key=lambda e: -e["transactions"])


def _segment(rows, member: np.ndarray, live: Sorted, candidate: Sorted, threshold: float) -> dict:
    lv, cv = live.values[rows], candidate.values[rows]
    # the segment's values in sorted order, without sorting again
    lv_sorted, cv_sorted = (m.sorted[member[m.order]] for m in (live, candidate))
    live_alert, cand_alert = lv >= threshold, cv >= threshold
    return {
        "transactions": len(rows),
        "live_mean": float(lv.mean()),
        "candidate_mean": float(cv.mean()),
        "mean_abs_delta": float(np.mean(np.abs(cv - lv))),
        "flips_to_alert": int(np.sum(cand_alert & ~live_alert)),
        "flips_to_pass": int(np.sum(live_alert & ~cand_alert)),
        "flip_rate": float(np.mean(cand_alert != live_alert)),
        "psi": psi_sorted(lv_sorted, cv_sorted),
    }


def _auc(rows, member: np.ndarray, live: Sorted, candidate: Sorted, labels) -> dict[str, float]:
    """ROC-AUC of both models inside the segment, from the window-wide orders."""
    rows = rows[np.isfinite(labels[rows])]
    member = np.zeros(len(member), dtype=bool)
    member[rows] = True
    seg_labels = labels[rows]
    if len(rows) == 0 or seg_labels.min() == seg_labels.max():
        return {"live_roc_auc": float("nan"), "candidate_roc_auc": float("nan")}
    amounts = np.ones(len(rows))
    position = np.zeros(len(member), dtype=np.int64)
    position[rows] = np.arange(len(rows))
    out = {}
    for name, model in (("live", live), ("candidate", candidate)):
        local = position[model.order[member[model.order]]]  # still in ascending score order
        point = point_metrics(model.values[rows], seg_labels, amounts, 0.01, ascending=local)
        out[f"{name}_roc_auc"] = point["roc_auc"]
    out["roc_auc_delta"] = out["candidate_roc_auc"] - out["live_roc_auc"]
    return out
