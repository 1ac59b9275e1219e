"""Decision curves - recall and precision against the alert rate, with the one tie rule.

A model that alerts on its k riskiest labelled transactions catches TP(k) frauds. With tied
scores at the cut, the tied rows share the places left (analysis.ties), so TP(k) is the linear
interpolation of the true positives between the edges of the tie groups: the same expected
value the point estimates and every bootstrap replicate use. The curves are read at a fixed
grid of alert rates (log-spaced: fraud alert rates are small), so the report draws them from
the evidence and never recomputes anything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from analysis import ties

RATES = np.geomspace(1e-4, 1.0, 81)
"""Alert rates at which the curves are read (1 in 10,000 to every transaction)."""


def decision_curve(s: np.ndarray, labels: np.ndarray, threshold: float | None) -> dict[str, Any]:
    """Recall and precision of scores sorted in DESCENDING order (labels aligned) at each alert
    rate of RATES, and the operating point at `threshold` (alerts: scores >= threshold).
    Empty when the labels hold no fraud or no legitimate transaction."""
    n = len(s)
    positives = int(np.count_nonzero(labels))
    if n == 0 or positives in (0, n):
        return {}
    caught_at = _caught(s, labels)
    ks = np.unique([ties.top_k(float(rate), n) for rate in RATES])
    caught = caught_at(ks)
    curve: dict[str, Any] = {
        "alert_rate": (ks / n).tolist(),
        "recall": (caught / positives).tolist(),
        "precision": (caught / ks).tolist(),
    }
    if threshold is not None:
        alerts = int(np.count_nonzero(s >= threshold))  # a tie group's edge: nothing shared
        found = float(caught_at(np.array([alerts]))[0])
        curve["at_threshold"] = {
            "threshold": float(threshold),
            "alert_rate": alerts / n,
            "recall": found / positives,
            "precision": found / alerts if alerts else None,
        }
    return curve


def _caught(s: np.ndarray, labels: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """TP(k): the expected frauds among the k riskiest rows, ties at the cut shared."""
    if len(s) > 1 and not np.any(s[1:] == s[:-1]):  # no ties: the frauds above row k
        hits = np.flatnonzero(labels)
        return lambda ks: np.searchsorted(hits, ks, side="left").astype(np.float64)
    ends = np.flatnonzero(np.r_[s[1:] != s[:-1], True])  # the last row of each tie group
    edges = np.r_[0, ends + 1].astype(np.float64)
    tp = np.r_[0, np.cumsum(labels != 0, dtype=np.int64)[ends]].astype(np.float64)
    return lambda ks: np.interp(ks, edges, tp)  # one tie group between two edges: linear
