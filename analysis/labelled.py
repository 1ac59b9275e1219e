"""Labelled metrics - ROC-AUC, average precision, recall/precision at the live alert rate, with
bootstrap intervals.

Point estimates use the whole labelled window (one sort per model). Ties follow one rule
everywhere, in the point estimates and in every bootstrap replicate (analysis.bootstrap):
ROC-AUC counts a tied (fraud, legitimate) pair as half (scikit-learn's roc_auc_score), average
precision steps at each distinct score (scikit-learn's average_precision_score), and the
figures at the live alert rate keep exactly k = round(rate * n) alerts with the ties at the
cut sharing the places left (analysis.ties). A constant model has ROC-AUC 0.5 in every
replicate, so its interval is [0.5, 0.5].
"""

from __future__ import annotations

import numpy as np

from analysis import bootstrap, ties
from analysis.bootstrap import METRICS
from analysis.curves import decision_curve

_CHUNK = 25


def point_metrics(
    scores, labels, amounts, rate: float, ascending: np.ndarray | None = None, ordered=None
):
    """Every labelled metric of one model on the whole window (`ascending`: its argsort,
    `ordered`: the scores in that order, if already at hand)."""
    s, order = _descending(scores, ascending, ordered)
    return sorted_metrics(s, labels[order], amounts[order], rate)


def _descending(scores, ascending: np.ndarray | None, ordered) -> tuple[np.ndarray, np.ndarray]:
    """The scores in descending order and that order (from the ascending argsort if given)."""
    order = (np.argsort(scores, kind="stable") if ascending is None else ascending)[::-1]
    return (scores[order] if ordered is None or ascending is None else ordered[::-1]), order


def sorted_metrics(s: np.ndarray, labels: np.ndarray, a: np.ndarray, rate: float) -> dict:
    """The labelled metrics of scores already sorted in DESCENDING order (labels, amounts
    aligned with them)."""
    n = len(s)
    pos = int(np.count_nonzero(labels))
    if pos == 0 or pos == n:
        return {name: float("nan") for name in METRICS}
    k = ties.top_k(rate, n)
    if _distinct(s):
        return _distinct_metrics(labels, a, k)
    y = labels.astype(np.float64)
    ends, tp, fp = _curve(s, y)
    tpr, fpr = np.r_[0, tp / pos], np.r_[0, fp / fp[-1]]
    caught = np.cumsum(y * a)[ends]
    group = int(np.searchsorted(ends, k - 1))  # the tie group holding the k-th riskiest row
    above = int(ends[group - 1]) + 1 if group else 0
    share = (k - above) / (int(ends[group]) + 1 - above)
    found = _shared(tp, group, share)
    return {
        "roc_auc": float(np.trapezoid(tpr, fpr)),
        "average_precision": float(np.sum(np.diff(tpr) * (tp / (tp + fp)))),
        "recall_at_live_rate": found / pos,
        "precision_at_live_rate": found / k,
        "amount_recall": _shared(caught, group, share) / caught[-1]
        if caught[-1] > 0
        else float("nan"),
    }


def _shared(cumulative: np.ndarray, group: int, share: float) -> float:
    """A cumulative figure up to the groups above the cut, plus `share` of the cut's group."""
    before = float(cumulative[group - 1]) if group else 0.0
    return before + share * (float(cumulative[group]) - before)


def _distinct(s: np.ndarray) -> bool:
    return len(s) > 1 and not np.any(s[1:] == s[:-1])


def _distinct_metrics(labels: np.ndarray, a: np.ndarray, k: int) -> dict:
    """sorted_metrics when no two scores tie: every row is a point of the curve, so each
    figure follows from the positions of the positives alone (no per-row curve arrays)."""
    hits = np.flatnonzero(labels)  # the positives' rows, riskiest first
    pos, neg = len(hits), len(labels) - len(hits)
    caught = int(np.searchsorted(hits, k))  # positives among the top k rows
    worth = a[hits]
    total = float(np.sum(worth))
    return {
        "roc_auc": _pairs_above(hits, neg) / (pos * neg),
        "average_precision": float(np.sum(np.arange(1, pos + 1) / (hits + 1.0)) / pos),
        "recall_at_live_rate": caught / pos,
        "precision_at_live_rate": caught / k,
        "amount_recall": float(np.sum(worth[:caught])) / total if total > 0 else float("nan"),
    }


def _pairs_above(hits: np.ndarray, neg: int) -> float:
    """(positive, negative) pairs with the positive riskier (Mann-Whitney U): the j-th
    positive (0-based) at row h has h - j negatives above it."""
    pos = len(hits)
    return float(pos * neg - int(np.sum(hits, dtype=np.int64)) + pos * (pos - 1) // 2)


def _curve(s: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The last row of each group of tied (descending) scores, and the true and false
    positives above and at it."""
    ends = np.flatnonzero(np.r_[s[1:] != s[:-1], True])
    tp = np.cumsum(y)[ends]
    return ends, tp, (ends + 1) - tp  # rows seen minus positives: exact below 2**53


def roc_auc_sorted(s: np.ndarray, labels: np.ndarray) -> float:
    """ROC-AUC of scores in DESCENDING order (ties like scikit-learn); NaN without both
    classes."""
    if _distinct(s):
        hits = np.flatnonzero(labels)
        neg = len(labels) - len(hits)
        return _pairs_above(hits, neg) / (len(hits) * neg) if len(hits) and neg else float("nan")
    _, tp, fp = _curve(s, labels.astype(np.float64))
    if len(tp) == 0 or tp[-1] == 0 or fp[-1] == 0:
        return float("nan")
    return float(np.trapezoid(np.r_[0, tp / tp[-1]], np.r_[0, fp / fp[-1]]))


class LabelledWindow:
    """The labelled transactions of a window: bootstrap weights drawn once, shared by models."""

    def __init__(
        self,
        labels,
        amounts,
        rate: float,
        *,
        samples: int,
        rows: int,
        seed: int,
        keys=None,
        threshold: float | None = None,
    ):
        rng = np.random.default_rng(seed)
        self.threshold = threshold
        """The live threshold: each model's decision curve marks its operating point there."""
        self.curves: dict[str, dict] = {}
        """Per model key, its decision curve (analysis.curves), made with its point metrics."""
        self.labels = np.asarray(labels)
        self.amounts = np.nan_to_num(np.asarray(amounts, np.float64), nan=0.0)
        self.rate = rate
        n = len(self.labels)
        self.pick = bootstrap.pick(n, rows, rng, keys, seed)
        self.scale = np.sqrt(len(self.pick) / max(n, 1))
        self.blocks = [
            bootstrap.poisson_weights(rng, (min(_CHUNK, samples - b), len(self.pick)))
            for b in range(0, samples, _CHUNK)
        ]
        self._cache: dict[str, tuple[dict[str, float], np.ndarray | None]] = {}

    @property
    def positives(self) -> int:
        return int(np.count_nonzero(self.labels))

    def model(
        self, key: str, scores: np.ndarray, ascending: np.ndarray | None = None, ordered=None
    ) -> tuple[dict[str, float], np.ndarray | None]:
        """Point metrics and bootstrap replicates (metric x replicate, on the whole window's
        scale) of one model, cached."""
        if key not in self._cache:
            s, order = _descending(scores, ascending, ordered)
            y = self.labels[order]
            point = sorted_metrics(s, y, self.amounts[order], self.rate)
            self.curves[key] = decision_curve(s, y, self.threshold)
            self._cache[key] = (point, self._replicates(point, scores) if self.blocks else None)
        return self._cache[key]

    def _replicates(self, point: dict[str, float], scores: np.ndarray) -> np.ndarray:
        """The replicates of the subsample, moved to the whole window: the point estimate plus
        each replicate's deviation from the subsample's own estimate, times sqrt(m / n) (1
        when the subsample is the whole window: then these are the replicates themselves)."""
        subsample = scores[self.pick]
        order = np.argsort(-subsample, kind="stable")  # once, for every block
        rows = self.pick[order]
        y = self.labels[rows].astype(np.float32)
        a = self.amounts[rows].astype(np.float32)
        groups = bootstrap.tie_groups(subsample[order])
        ones = np.ones((1, len(rows)), np.float32)
        centre = bootstrap.replicates(y, a, self.rate, ones, groups)
        reps = np.hstack(
            [bootstrap.replicates(y, a, self.rate, w[:, order], groups) for w in self.blocks]
        )
        estimate = np.array([[point[name]] for name in METRICS])
        return estimate + (reps - centre) * self.scale

    def compare(
        self, live: tuple, candidate: tuple, level: float = 0.95
    ) -> dict[str, dict[str, float]]:
        """Per metric: live, candidate, delta (candidate - live), each with its percentile
        interval; the delta's replicates pair live and candidate on the same weights."""
        est_live, rep_live = self.model(*live)
        est_cand, rep_cand = self.model(*candidate)
        reps = {"live": rep_live, "candidate": rep_cand}
        if rep_live is not None and rep_cand is not None:
            reps["delta"] = rep_cand - rep_live
        out: dict[str, dict[str, float]] = {}
        for i, name in enumerate(METRICS):
            entry = {
                "live": est_live[name],
                "candidate": est_cand[name],
                "delta": est_cand[name] - est_live[name],
            }
            for part in list(entry):
                rep = reps.get(part)
                if rep is not None:
                    low = -1.0 if part == "delta" else 0.0
                    bounds = bootstrap.interval(rep[i], level, low, 1.0)
                    entry[f"{part}_ci_low"], entry[f"{part}_ci_high"] = bounds
            out[name] = {k: float(v) for k, v in entry.items()}
        return out
