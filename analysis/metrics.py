"""Paired metrics - score distribution and agreement of a candidate with the live model.

Inputs are compact numpy arrays of the same transactions (live[i] and candidate[i] scored the
same txn_id). Statistics come from scipy where it has them; the orderings (ranks, riskiest 1 %)
are computed once from argsort so 2.5 M pairs stay around a second.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from analysis import ties
from analysis.ordering import argsort

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
PSI_BINS = 10
_TAIL = np.geomspace(1e-5, 0.5, 40)
QQ_POINTS = np.unique(np.r_[0.0, _TAIL, 1.0 - _TAIL, 1.0])
"""Quantile levels of the QQ plot: the whole range, dense in both tails (a fraud model's
alerts live in the top 1 %; log-spaced towards 0 and towards 1)."""
_EPS = 1e-6


class Sorted:
    """An array with its argsort and average ranks, computed once and shared."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = np.asarray(values, dtype=np.float64)
        self.order, self.sorted = argsort(self.values)  # ties in any order: no figure cares

    @functools.cached_property
    def ranks(self) -> np.ndarray:
        """Ranks 1..n, tied values sharing their average rank (scipy.stats.rankdata 'average')."""
        n = len(self.sorted)
        ranks = np.empty(n, dtype=np.float64)
        first = np.flatnonzero(np.r_[True, self.sorted[1:] != self.sorted[:-1]])
        if len(first) == n:  # no ties (continuous scores): rank = position
            ranks[self.order] = np.arange(1.0, n + 1.0)
            return ranks
        size = np.diff(np.r_[first, n])
        ranks[self.order] = np.repeat(first + (size + 1) / 2.0, size)
        return ranks


def sorted_quantiles(values: np.ndarray, points) -> np.ndarray:
    """np.quantile's default (linear) on an array that is already sorted: no partitioning."""
    position = np.asarray(points, dtype=np.float64) * (len(values) - 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


def quantiles(values: np.ndarray) -> dict[str, float]:
    """The usual quantiles and the mean of a SORTED score array."""
    if len(values) == 0:
        return {}
    points = sorted_quantiles(values, QUANTILES)
    out = {f"p{round(q * 100):02d}": float(v) for q, v in zip(QUANTILES, points, strict=True)}
    out["mean"] = float(np.mean(values))
    return out


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = PSI_BINS) -> float:
    """Population stability index of `actual` against `expected`, bins from expected quantiles."""
    return psi_sorted(np.sort(expected), np.sort(actual), bins)


def psi_sorted(expected: np.ndarray, actual: np.ndarray, bins: int = PSI_BINS) -> float:
    """PSI of two sorted arrays: bin edges are live deciles, counts come from bisecting."""
    if len(expected) == 0 or len(actual) == 0:
        return float("nan")
    edges = np.unique(sorted_quantiles(expected, np.linspace(0, 1, bins + 1)[1:-1]))
    e = _shares(expected, edges)
    a = _shares(actual, edges)
    return float(np.sum((a - e) * np.log(a / e)))


def _shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of sorted values in each bin (-inf, e1), [e1, e2), ... [ek, inf); floored at 1e-6."""
    cuts = np.searchsorted(values, edges, side="left")
    counts = np.diff(np.r_[0, cuts, len(values)])
    return np.maximum(counts / len(values), _EPS)


def cdf_gap(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merged sorted values and F_a - F_b right after each of them (ties resolved).

    A stable argsort of two sorted runs is a linear merge, so this costs one pass, not a sort.
    """
    both = np.concatenate([a, b])
    merged_idx = np.argsort(both, kind="stable")
    seen_a = np.cumsum(merged_idx < len(a))
    seen_b = np.arange(1, len(both) + 1) - seen_a
    gap = seen_a / len(a) - seen_b / len(b)
    values = both[merged_idx]
    last = np.r_[values[1:] != values[:-1], True]  # F is right-continuous: read it after ties
    return values[last], gap[last]


def ks_sorted(a: np.ndarray, b: np.ndarray, gap: np.ndarray | None = None) -> tuple[float, float]:
    """Two-sample KS statistic and two-sided p-value, as scipy.stats.ks_2samp computes them.

    Small samples go to scipy (exact p-value); large ones use the merged CDFs and scipy's
    asymptotic distribution, exactly what ks_2samp's 'auto' mode does above 10,000 rows.
    """
    from scipy import stats

    n1, n2 = len(a), len(b)
    if max(n1, n2) <= 10_000:
        result = stats.ks_2samp(a, b)
        return float(result.statistic), float(result.pvalue)
    if gap is not None:
        d = float(np.max(np.abs(gap)))
    elif n1 == n2:
        d = _ks_equal(a, b)
    else:
        d = float(np.max(np.abs(cdf_gap(a, b)[1])))
    m, n = max(n1, n2), min(n1, n2)
    p = float(np.clip(stats.distributions.kstwo.sf(d, np.round(m * n / (m + n))), 0, 1))
    return d, p


_BLOCK = 1 << 16


def _ks_equal(a: np.ndarray, b: np.ndarray) -> float:
    """sup |F_a - F_b| of two sorted samples of the same size, block by block of value: the
    blocks end at the same values in both runs (so no tie group is split) and hold at most
    ~65k values of each, so every temporary stays small (big ones cost page faults). In a
    block a stable argsort of the two runs is a linear merge; the running count difference is
    read at the last value of each tie group (integers, so the statistic is exact)."""
    n = len(a)
    cuts = np.sort(np.r_[a[_BLOCK - 1 :: _BLOCK], b[_BLOCK - 1 :: _BLOCK]])
    in_a = np.r_[0, np.searchsorted(a, cuts, side="right"), n]
    in_b = np.r_[0, np.searchsorted(b, cuts, side="right"), n]
    best = 0
    for lo_a, hi_a, lo_b, hi_b in zip(in_a[:-1], in_a[1:], in_b[:-1], in_b[1:], strict=True):
        if hi_a > lo_a or hi_b > lo_b:
            best = max(best, _block_gap(a[lo_a:hi_a], b[lo_b:hi_b], int(lo_a - lo_b)))
    return float(best / n)


def _block_gap(a: np.ndarray, b: np.ndarray, base: int) -> int:
    """max |#a<=v - #b<=v| over the values v of one block; `base`: the difference before it."""
    both = np.concatenate([a, b])
    merged = np.argsort(both, kind="stable")
    step = (merged < len(a)).view(np.int8) * np.int8(2) - np.int8(1)  # +1 from a, -1 from b
    gap = np.cumsum(step, dtype=np.int64)
    gap += base
    values = both[merged]
    last = np.r_[values[1:] != values[:-1], True]
    return int(np.abs(gap[last]).max())


def wasserstein_sorted(a: np.ndarray, b: np.ndarray, merged: tuple | None = None) -> float:
    """1-Wasserstein distance of two sorted samples: the integral of |F_a - F_b|."""
    if len(a) == len(b):
        return float(np.mean(np.abs(a - b)))  # equal sizes: the mean gap of the quantiles
    values, gap = merged if merged is not None else cdf_gap(a, b)
    return float(np.sum(np.abs(gap[:-1]) * np.diff(values)))


def distribution(live: Sorted, candidate: Sorted) -> dict[str, float | dict[str, float]]:
    """Quantiles, PSI, two-sample KS (statistic, p-value) and Wasserstein distance."""
    same_size = len(live.sorted) == len(candidate.sorted)
    merged = None if same_size else cdf_gap(live.sorted, candidate.sorted)
    ks, pvalue = ks_sorted(live.sorted, candidate.sorted, None if merged is None else merged[1])
    return {
        "live_quantiles": quantiles(live.sorted),
        "candidate_quantiles": quantiles(candidate.sorted),
        "psi": psi_sorted(live.sorted, candidate.sorted),
        "ks_statistic": ks,
        "ks_pvalue": pvalue,
        "wasserstein": wasserstein_sorted(live.sorted, candidate.sorted, merged),
        "histogram": histogram(live.sorted, candidate.sorted),
        "qq": {
            "q": QQ_POINTS.tolist(),
            "live": sorted_quantiles(live.sorted, QQ_POINTS).tolist(),
            "candidate": sorted_quantiles(candidate.sorted, QQ_POINTS).tolist(),
        },
    }


def histogram(live: np.ndarray, candidate: np.ndarray, bins: int = 50) -> dict[str, Any]:
    """Counts of both SORTED score arrays on shared edges (for the report's plots). Edges are
    log-spaced from the smallest positive score to the largest (scores of a fraud model span
    decades); scores below the first edge count in the first bin. Linear edges when no score
    is positive or all scores are equal."""
    low = float(min(live[0], candidate[0]))
    high = float(max(live[-1], candidate[-1]))
    positive = [float(v[np.searchsorted(v, 0.0, side="right")]) for v in (live, candidate)
                if v[-1] > 0]  # fmt: skip
    smallest = min(positive) if positive else high
    if 0 < smallest < high:
        edges, scale = np.geomspace(smallest, high, bins + 1), "log"
    else:
        edges, scale = np.linspace(low, high if high > low else low + 1.0, bins + 1), "linear"
    return {
        "edges": edges.tolist(),
        "scale": scale,
        "live": _shares_at(live, edges),
        "candidate": _shares_at(candidate, edges),
    }


def _shares_at(values: np.ndarray, edges: np.ndarray) -> list[int]:
    cuts = np.searchsorted(values, edges[1:-1], side="left")
    return np.diff(np.r_[0, cuts, len(values)]).tolist()


def agreement(live: Sorted, candidate: Sorted, live_threshold: float) -> dict[str, float]:
    """Correlations, |delta|, decisions at the live threshold, alert overlap at the matched rate,
    top-1 % overlap.

    At a fraud alert rate r almost every transaction is a "pass" for both models, so figures
    over all transactions (decision agreement) sit near 1 - 2r for any candidate, even noise;
    the figures that decide compare the alert sets (overlap, Jaccard, Cohen's kappa) and the
    riskiest 1 %. Ties at a cut follow analysis.ties. Spearman is Pearson on average ranks
    from the shared argsorts (= scipy.stats.spearmanr). Every figure depends on the values
    only, never on the order of the rows.
    """
    n = len(live.values)
    if n < 2:
        return {"pairs": float(n)}
    live_alert = live.values >= live_threshold
    cand_alert = candidate.values >= live_threshold
    alert_rate = float(live_alert.mean())
    same = float(np.mean(cand_alert == live_alert))
    return {
        "pairs": float(n),
        "pearson": _corr(live.values, candidate.values),
        "spearman": _corr(live.ranks, candidate.ranks),
        "mean_abs_delta": float(np.mean(np.abs(candidate.values - live.values))),
        "mean_delta": float(np.mean(candidate.values - live.values)),
        "live_alert_rate": alert_rate,
        "candidate_alert_rate": float(cand_alert.mean()),
        "alert_rate_diff": float(cand_alert.mean() - alert_rate),
        "flips_to_alert": float(np.sum(cand_alert & ~live_alert)),
        "flips_to_pass": float(np.sum(live_alert & ~cand_alert)),
        "flip_rate": 1.0 - same,
        "decision_agreement_at_live_threshold": same,
        "kappa_at_live_threshold": kappa(alert_rate, float(cand_alert.mean()), same),
        **matched_agreement(live_alert, candidate),
        "top1pct_overlap": top_overlap(live, candidate, 0.01),
    }


def kappa(rate_a: float, rate_b: float, same: float) -> float:
    """Cohen's kappa of two yes/no decisions from their yes rates and their agreement (as
    sklearn.metrics.cohen_kappa_score); NaN when chance alone agrees always."""
    chance = rate_a * rate_b + (1 - rate_a) * (1 - rate_b)
    if chance >= 1.0:
        return float("nan")
    return float((same - chance) / (1 - chance))


def matched_agreement(live_alert: np.ndarray, candidate: Sorted) -> dict[str, float]:
    """The candidate at the live alert rate: it alerts on exactly as many transactions as live
    (k), ties at its cut shared (analysis.ties). How many of live's k alerts it raises too
    (overlap, Jaccard, Cohen's kappa), and the chance that a candidate ranking at random would
    share at least as many (hypergeometric tail: small means not chance)."""
    n, k = len(candidate.values), int(live_alert.sum())
    if k == 0:
        nothing = float("nan")
        return {
            "matched_threshold": float("inf"),
            "alert_overlap_at_matched_rate": nothing,
            "alert_jaccard_at_matched_rate": nothing,
            "kappa_at_matched_rate": nothing,
            "alert_overlap_pvalue": nothing,
            "decision_agreement_at_matched_rate": 1.0,
        }
    from scipy import stats

    at = ties.cut(candidate.sorted, k)
    shared = ties.alerts_within(candidate.values, at, live_alert)
    same = 1.0 - 2.0 * (k - shared) / n
    rate = k / n
    least = max(int(np.ceil(shared - 1e-9)), 0)  # a share of a tied row counts as the whole row
    return {
        "matched_threshold": at.value,
        "alert_overlap_at_matched_rate": shared / k,
        "alert_jaccard_at_matched_rate": shared / (2 * k - shared),
        "kappa_at_matched_rate": kappa(rate, rate, same),
        "alert_overlap_pvalue": float(stats.hypergeom.sf(least - 1, n, k, k)),
        "decision_agreement_at_matched_rate": same,
    }


def top_overlap(live: Sorted, candidate: Sorted, share: float) -> float:
    """Share of the live model's riskiest `share` of transactions that the candidate also ranks
    among its riskiest `share`: k = round(share * n) on both sides, ties at each cut shared."""
    n = len(live.values)
    k = ties.top_k(share, n)
    at_live, at_cand = ties.cut(live.sorted, k), ties.cut(candidate.sorted, k)
    return ties.shared_alerts(live.values, at_live, candidate.values, at_cand) / k


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation (np.corrcoef's, clipped to [-1, 1] as it is) from two centred
    copies and three dot products: corrcoef stacks both arrays first (~2.5x slower)."""
    da, db = a - a.mean(), b - b.mean()
    scale = np.sqrt(np.dot(da, da) * np.dot(db, db))
    if scale == 0:
        return float("nan")
    return float(np.clip(np.dot(da, db) / scale, -1.0, 1.0))
