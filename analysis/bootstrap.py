"""Bootstrap - Poisson-weighted replicates of the labelled metrics, ties treated as the point
estimates treat them, and percentile intervals inside each metric's range.

Each replicate gives every transaction a Poisson(1) weight (the Poisson bootstrap: a resample
of the window with replacement, as a row drawn k times weighs k). Live and candidate share the
weights of a replicate, so the interval of their difference is paired. Rows are visited in
descending score order; only cumulative sums of the weights are needed, read at each tie group's
edges, so a replicate never re-sorts. Windows larger than `analysis.bootstrap_rows` resample a
fixed subsample of m rows and rescale the replicates' spread by sqrt(m / n) (the m-out-of-n
bootstrap); the intervals are then clipped to the metric's range.
"""

from __future__ import annotations

import numpy as np

METRICS = ("roc_auc", "average_precision", "recall_at_live_rate", "precision_at_live_rate",
           "amount_recall")  # fmt: skip
"""The labelled metrics, in the order of a replicate's rows; each lies in [0, 1]."""


def tie_groups(descending: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per position of a DESCENDING score array, the first and last position of its tie group."""
    n = len(descending)
    starts = np.flatnonzero(np.r_[True, descending[1:] != descending[:-1]])
    sizes = np.diff(np.r_[starts, n])
    return np.repeat(starts, sizes), np.repeat(starts + sizes - 1, sizes)


def replicates(y, a, rate: float, w, groups: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Every metric (len(METRICS) x replicates) for a block of weights `w` (replicates x rows),
    the rows in descending score order: labels `y`, amounts `a` (float32), `groups` from
    tie_groups. Tied rows count as the point estimates count them: half a pair for ROC-AUC,
    precision read at the end of the tie group for average precision, and a proportional
    share of the tied weight at the cut for the figures at the live alert rate."""
    first, last = groups
    hits = np.flatnonzero(y)
    count, rows = w.shape
    seen = np.zeros((count, rows + 1), np.float32)  # seen[:, c]: the weight of rows < c
    np.cumsum(w, axis=1, out=seen[:, 1:])
    wp = w[:, hits]
    tp = np.zeros((count, len(hits) + 1), np.float32)  # tp[:, j]: weight of the first j positives
    np.cumsum(wp, axis=1, out=tp[:, 1:])
    caught = np.zeros_like(tp)
    np.cumsum(wp * a[hits], axis=1, out=caught[:, 1:])
    pos, total = tp[:, -1], seen[:, -1]
    neg = total - pos
    edges = _edges(hits, first[hits], last[hits])
    before, through = seen[:, edges[0]], seen[:, edges[1] + 1]
    tp_before, tp_through = tp[:, edges[2]], tp[:, edges[3]]
    with np.errstate(invalid="ignore", divide="ignore"):
        above = neg[:, None] - ((before - tp_before) + (through - tp_through)) / 2
        auc = np.sum(wp * above, axis=1, dtype=np.float64) / (pos * neg)
        precision = np.divide(tp_through, through, out=np.zeros_like(through), where=through > 0)
        ap = np.sum(wp * precision, axis=1, dtype=np.float64) / pos
        at_rate = _at_rate(rate, seen, tp, caught, hits, groups)
        return np.vstack([auc, ap, at_rate[0] / pos, at_rate[1], at_rate[2] / caught[:, -1]])


def _edges(hits: np.ndarray, first: np.ndarray, last: np.ndarray) -> tuple[np.ndarray, ...]:
    """Tie groups' first and last rows, and the positives before them and through them."""
    return (
        first,
        last,
        np.searchsorted(hits, first, side="left"),
        np.searchsorted(hits, last, side="right"),
    )


def _at_rate(rate: float, seen, tp, caught, hits, groups) -> tuple[np.ndarray, ...]:
    """Per replicate: positives caught, precision and amount caught by its round(rate * W)
    riskiest units of weight (W: the replicate's total weight), ties at the cut shared."""
    first, last = groups
    total = seen[:, -1]
    k = np.clip(np.rint(rate * total), 1, np.maximum(total, 1))
    at = np.count_nonzero(seen[:, 1:] < k[:, None], axis=1)  # the row where weight reaches k
    at = np.minimum(at, len(first) - 1)
    reps = np.arange(len(total))
    lo, hi, p_lo, p_hi = _edges(hits, first[at], last[at])
    before, through = seen[reps, lo], seen[reps, hi + 1]
    share = np.divide(k - before, through - before, out=np.zeros_like(k), where=through > before)
    found = tp[reps, p_lo] + share * (tp[reps, p_hi] - tp[reps, p_lo])
    worth = caught[reps, p_lo] + share * (caught[reps, p_hi] - caught[reps, p_lo])
    return found, found / k, worth


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


def pick(n: int, rows: int, rng: np.random.Generator, keys, seed: int) -> np.ndarray:
    """The rows resampled, in a fixed order: all of them, or a subsample of `rows`. With `keys`
    (a hash of each txn_id) the rows and their order follow the keys, so the intervals do not
    depend on the order in which the engine returned the rows (a parallel GROUP BY returns
    them in any order)."""
    if keys is None:
        return np.sort(rng.choice(n, size=rows, replace=False)) if rows < n else np.arange(n)
    mixed = np.asarray(keys, dtype=np.uint64) ^ np.uint64(seed * 0x9E3779B97F4A7C15 % 2**64)
    chosen = np.argpartition(mixed, rows)[:rows] if rows < n else np.arange(n)
    return chosen[np.argsort(mixed[chosen], kind="stable")]


def interval(values: np.ndarray, level: float, low: float, high: float) -> tuple[float, float]:
    """Percentile interval of replicate values, inside [low, high]; NaN when none is finite."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return float("nan"), float("nan")
    bottom, top = np.quantile(finite, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(np.clip(bottom, low, high)), float(np.clip(top, low, high))
