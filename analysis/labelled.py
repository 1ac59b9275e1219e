"""Labelled metrics - ROC-AUC, PR-AUC, recall/precision at the live alert rate, with bootstrap CIs.

Point estimates use the whole labelled window (one sort per model, ties handled like
scikit-learn, which the tests check against). Confidence intervals use a vectorised
m-out-of-n Poisson bootstrap: a fixed random subsample of m rows (settings
analysis.bootstrap_rows) is sorted once per model; each replicate only draws Poisson(1) weights
(`poisson_weights`) and takes cumulative sums, so 200 replicates never rescan or resort the
window. The replicate spread is rescaled by sqrt(m/n) to the full window (basic bootstrap
interval). Live and candidate share every replicate's weights, so the delta's interval is
paired.
"""

from __future__ import annotations

import numpy as np

METRICS = ("roc_auc", "pr_auc", "recall_at_live_rate", "precision_at_live_rate", "amount_recall")
_CHUNK = 25


def point_metrics(
    scores, labels, amounts, rate: float, ascending: np.ndarray | None = None, ordered=None
):
    """Every labelled metric of one model on the whole window (`ascending`: its argsort,
    `ordered`: the scores in that order, if already at hand)."""
    order = (np.argsort(scores, kind="stable") if ascending is None else ascending)[::-1]
    s = scores[order] if ordered is None or ascending is None else ordered[::-1]
    return sorted_metrics(s, labels[order], amounts[order], rate)


def sorted_metrics(s: np.ndarray, labels: np.ndarray, a: np.ndarray, rate: float) -> dict:
    """The labelled metrics of scores already sorted in DESCENDING order (labels, amounts
    aligned with them)."""
    if _distinct(s):
        return _distinct_metrics(labels, a, rate)
    y = labels.astype(np.float64)
    ends, tp, fp = _curve(s, y)
    pos, neg = tp[-1], fp[-1]
    if pos == 0 or neg == 0:
        return {name: float("nan") for name in METRICS}
    tpr, fpr = np.r_[0, tp / pos], np.r_[0, fp / neg]
    # alert on every score >= the k-th highest: ties at the cut all alert, as a threshold would
    cut = int(np.searchsorted(ends, _top_k(rate, len(s)) - 1))
    caught = np.cumsum(y * a)[ends]
    return {
        "roc_auc": float(np.trapezoid(tpr, fpr)),
        "pr_auc": float(np.sum(np.diff(tpr) * (tp / (tp + fp)))),
        "recall_at_live_rate": float(tp[cut] / pos),
        "precision_at_live_rate": float(tp[cut] / (tp[cut] + fp[cut])),
        "amount_recall": float(caught[cut] / caught[-1]) if caught[-1] > 0 else float("nan"),
    }


def _distinct(s: np.ndarray) -> bool:
    return len(s) > 1 and not np.any(s[1:] == s[:-1])


def _distinct_metrics(labels: np.ndarray, a: np.ndarray, rate: float) -> dict:
    """sorted_metrics when no two scores tie: every row is a point of the curve, so each
    figure follows from the positions of the positives alone (no per-row curve arrays)."""
    n, hits = len(labels), np.flatnonzero(labels)  # the positives' rows, riskiest first
    pos, neg = len(hits), len(labels) - len(hits)
    if pos == 0 or neg == 0:
        return {name: float("nan") for name in METRICS}
    caught = int(np.searchsorted(hits, _top_k(rate, n)))  # positives among the top k rows
    worth = a[hits]
    total = float(np.sum(worth))
    return {
        "roc_auc": _pairs_above(hits, neg) / (pos * neg),
        "pr_auc": float(np.sum(np.arange(1, pos + 1) / (hits + 1.0)) / pos),
        "recall_at_live_rate": caught / pos,
        "precision_at_live_rate": caught / _top_k(rate, n),
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


def _top_k(rate: float, n: int) -> int:
    return min(n, max(1, round(rate * n)))


def _replicates(y, a, rate, w) -> np.ndarray:
    """Metrics (len(METRICS) x replicates) for a block of Poisson weights `w`, one model:
    labels `y`, amounts `a` (float32) and the columns of `w` in descending score order.
    Only the weight seen so far (a cumulative sum) is needed at every column; the rest is
    summed over the positives' columns alone (~2 % of them), where the labels' weight is not
    zero."""
    hits = np.flatnonzero(y)
    seen = np.cumsum(w, axis=1)
    wp = w[:, hits]
    start = np.zeros((len(w), 1), np.float32)  # a column before the first positive
    tp = np.cumsum(np.hstack([start, wp]), axis=1)  # positives seen, up to each positive
    caught = np.cumsum(np.hstack([start, wp * a[hits]]), axis=1)
    at_p = seen[:, hits]
    pos, neg = tp[:, -1], seen[:, -1] - tp[:, -1]
    k = _top_k(rate, len(y)) - 1
    upto = int(np.searchsorted(hits, k, side="right"))  # positives ranked at or above k
    # precision where a replicate has seen no row yet (its top rows drawn 0 times) is
    # undefined, and only ever multiplied by a zero weight: count it as 0, not NaN
    precision = np.divide(tp[:, 1:], at_p, out=np.zeros_like(at_p), where=at_p > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        above = neg[:, None] - (at_p - tp[:, 1:])  # negatives ranked below each positive
        auc = np.sum(wp * above, axis=1, dtype=np.float64) / (pos * neg)
        ap = np.sum(wp * precision, axis=1, dtype=np.float64) / pos
        return np.vstack(
            [
                auc,
                ap,
                tp[:, upto] / pos,
                tp[:, upto] / seen[:, k],
                caught[:, upto] / caught[:, -1],
            ]
        )


def _poisson_thresholds(top: int = 20) -> np.ndarray:
    """2**32 * P(X <= k) of X ~ Poisson(1), k = 0..top-1, rounded (P(X >= 20) < 2**-32)."""
    pmf = np.exp(-1.0) / np.cumprod(np.r_[1.0, np.arange(1.0, top)])
    return np.minimum(np.round(np.cumsum(pmf) * 2.0**32), 2.0**32 - 1).astype(np.uint32)


_POISSON = _poisson_thresholds()
_COMPARED = 6  # P(X >= 6) ~ 6e-4: the rare larger weights are looked up instead


def poisson_weights(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Poisson(1) draws as float32, by inversion of uniform 32-bit integers: a weight is the
    number of CDF thresholds its draw reaches (exact to 2**-32 per value; ~4x faster than
    Generator.poisson, which draws one value at a time)."""
    draws = rng.integers(0, 2**32, size=shape, dtype=np.uint32)
    weights = np.zeros(shape, dtype=np.uint8)
    for threshold in _POISSON[:_COMPARED]:
        weights += draws >= threshold
    tail = draws >= _POISSON[_COMPARED - 1]
    weights[tail] = np.searchsorted(_POISSON, draws[tail], side="right")
    return weights.astype(np.float32)


class LabelledWindow:
    """The labelled transactions of a window: bootstrap weights drawn once, shared by models."""

    def __init__(
        self, labels, amounts, rate: float, *, samples: int, rows: int, seed: int, keys=None
    ):
        rng = np.random.default_rng(seed)
        self.labels = np.asarray(labels)
        self.amounts = np.nan_to_num(np.asarray(amounts, np.float64), nan=0.0)
        self.rate = rate
        n = len(self.labels)
        self.pick = _pick(n, rows, rng, keys, seed)
        self.scale = np.sqrt(len(self.pick) / max(n, 1))
        self.blocks = [
            poisson_weights(rng, (min(_CHUNK, samples - b), len(self.pick)))
            for b in range(0, samples, _CHUNK)
        ]
        self._cache: dict[str, tuple[dict[str, float], np.ndarray | None]] = {}

    def model(
        self, key: str, scores: np.ndarray, ascending: np.ndarray | None = None, ordered=None
    ) -> tuple[dict[str, float], np.ndarray | None]:
        """Point metrics and replicate deviations (metric x replicate) of one model, cached."""
        if key not in self._cache:
            args = (self.labels, self.amounts, self.rate, ascending, ordered)
            point = point_metrics(scores, *args)
            devs = None
            if self.blocks:
                order = np.argsort(-scores[self.pick], kind="stable")  # once, for every block
                rows = self.pick[order]
                y = self.labels[rows].astype(np.float32)
                a = self.amounts[rows].astype(np.float32)
                centre = _replicates(y, a, self.rate, np.ones((1, len(rows)), np.float32))
                reps = np.hstack([_replicates(y, a, self.rate, w[:, order]) for w in self.blocks])
                devs = (reps - centre) * self.scale
            self._cache[key] = (point, devs)
        return self._cache[key]

    def compare(
        self, live: tuple, candidate: tuple, level: float = 0.95
    ) -> dict[str, dict[str, float]]:
        """Per metric: live, candidate, delta (candidate - live), each with a bootstrap CI."""
        est_live, dev_live = self.model(*live)
        est_cand, dev_cand = self.model(*candidate)
        devs = {"live": dev_live, "candidate": dev_cand}
        if dev_live is not None and dev_cand is not None:
            devs["delta"] = dev_cand - dev_live
        out: dict[str, dict[str, float]] = {}
        for i, name in enumerate(METRICS):
            values = {
                "live": est_live[name],
                "candidate": est_cand[name],
                "delta": est_cand[name] - est_live[name],
            }
            entry = dict(values)
            for part, value in values.items():
                if devs.get(part) is not None:
                    entry.update(_interval(part, value, devs[part][i], level))
            out[name] = {k: float(v) for k, v in entry.items()}
        return out


def _pick(n: int, rows: int, rng: np.random.Generator, keys, seed: int) -> np.ndarray:
    """The bootstrap subsample, in a fixed order. With `keys` (a hash of each txn_id) the rows
    and their order follow the keys, so the intervals do not depend on the order in which the
    engine returned the rows (a parallel GROUP BY returns them in any order)."""
    if keys is None:
        return np.sort(rng.choice(n, size=rows, replace=False)) if rows < n else np.arange(n)
    mixed = np.asarray(keys, dtype=np.uint64) ^ np.uint64(seed * 0x9E3779B97F4A7C15 % 2**64)
    chosen = np.argpartition(mixed, rows)[:rows] if rows < n else np.arange(n)
    return chosen[np.argsort(mixed[chosen], kind="stable")]


def _interval(part: str, value: float, deviations: np.ndarray, level: float) -> dict[str, float]:
    """Basic bootstrap interval: value minus the upper/lower deviation quantiles."""
    dev = deviations[np.isfinite(deviations)]
    if not len(dev):
        return {f"{part}_ci_low": float("nan"), f"{part}_ci_high": float("nan")}
    hi, lo = np.quantile(dev, [1 - (1 - level) / 2, (1 - level) / 2])
    return {f"{part}_ci_low": value - hi, f"{part}_ci_high": value - lo}
