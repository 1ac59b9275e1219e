"""Agreement at fraud alert rates and the one tie rule, against scipy / scikit-learn.

Hand-made candidates (live's scores permuted, a constant, live rounded to 2 decimals, live
itself, 1 - live) on a fraud-like window (alerts on ~1 %); every figure recomputed
independently: Cohen's kappa with scikit-learn, the tie-aware top-k chances from scipy's min and
max ranks, the hypergeometric tail with scipy, the bootstrap replicates on the resampled rows
with scikit-learn.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.metrics import average_precision_score, cohen_kappa_score, roc_auc_score

from analysis.bootstrap import METRICS, replicates, tie_groups
from analysis.labelled import LabelledWindow, point_metrics
from analysis.metrics import Sorted, agreement

N = 30_000
THRESHOLD = 0.2


def alert_chance(scores: np.ndarray, k: int) -> np.ndarray:
    """Each row's chance to be among the k riskiest, ties broken at random (scipy ranks)."""
    first = stats.rankdata(-scores, method="min")
    last = stats.rankdata(-scores, method="max")
    return np.clip((k - (first - 1)) / (last - first + 1), 0.0, 1.0)


@pytest.fixture(scope="module")
def window() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(42)
    labels = (rng.random(N) < 0.01).astype(np.int8)
    live = np.clip(rng.beta(1, 40, N) + labels * rng.beta(2, 5, N), 0, 1)
    return {
        "labels": labels,
        "live": live,
        "permuted": rng.permutation(live),
        "constant": np.full(N, 0.5),
        "rounded": np.round(live, 2),
        "same": live.copy(),
        "inverse": 1 - live,
    }


CANDIDATES = ["permuted", "constant", "rounded", "same", "inverse"]


@pytest.mark.parametrize("name", CANDIDATES)
def test_agreement_figures_match_an_independent_computation(window, name: str) -> None:
    live, cand = window["live"], window[name]
    agree = agreement(Sorted(live), Sorted(cand), THRESHOLD)
    live_alert = live >= THRESHOLD
    k = int(live_alert.sum())
    assert agree["kappa_at_live_threshold"] == pytest.approx(
        cohen_kappa_score(live_alert, cand >= THRESHOLD), abs=1e-12, nan_ok=True
    )
    chance = alert_chance(cand, k)
    shared = float(np.sum(chance[live_alert]))
    assert agree["alert_overlap_at_matched_rate"] == pytest.approx(shared / k, rel=1e-12)
    assert agree["alert_jaccard_at_matched_rate"] == pytest.approx(
        shared / (2 * k - shared), rel=1e-12
    )
    # kappa of live's alerts against the candidate's expected alerts at the same rate
    same = 1 - (np.sum(live_alert * (1 - chance)) + np.sum(~live_alert * chance)) / N
    rate = k / N
    expected = rate**2 + (1 - rate) ** 2
    assert agree["kappa_at_matched_rate"] == pytest.approx((same - expected) / (1 - expected))
    assert agree["decision_agreement_at_matched_rate"] == pytest.approx(same, rel=1e-12)
    least = int(np.ceil(shared - 1e-9))
    assert agree["alert_overlap_pvalue"] == pytest.approx(
        stats.hypergeom(N, k, k).sf(least - 1), rel=1e-9
    )
    top = round(0.01 * N)
    both = np.sum(alert_chance(live, top) * alert_chance(cand, top))
    assert agree["top1pct_overlap"] == pytest.approx(both / top, rel=1e-12)
    assert agree["spearman"] == pytest.approx(
        stats.spearmanr(live, cand).statistic, abs=1e-12, nan_ok=True
    )


def test_noise_shares_alerts_by_chance_only_and_live_itself_shares_all(window) -> None:
    live = Sorted(window["live"])
    figures = {n: agreement(live, Sorted(window[n]), THRESHOLD) for n in CANDIDATES}
    rate = figures["same"]["live_alert_rate"]
    assert 0.005 < rate < 0.03  # a fraud alert rate
    for noise in ("permuted", "constant"):
        # plain decision agreement cannot tell noise from live at this rate; these can
        assert figures[noise]["decision_agreement_at_matched_rate"] > 1 - 2 * rate - 0.01
        assert figures[noise]["alert_overlap_at_matched_rate"] < 3 * rate
        assert abs(figures[noise]["kappa_at_matched_rate"]) < 0.05
        assert figures[noise]["alert_overlap_pvalue"] > 0.001
    # a constant alerts on every row with the same chance k / n: exactly the alert rate
    assert figures["constant"]["alert_overlap_at_matched_rate"] == pytest.approx(rate)
    assert figures["constant"]["top1pct_overlap"] == pytest.approx(0.01, rel=1e-3)
    assert figures["same"]["alert_overlap_at_matched_rate"] == 1.0
    assert figures["inverse"]["alert_overlap_at_matched_rate"] == 0.0
    assert figures["same"]["alert_overlap_pvalue"] < 1e-100


def test_tie_rule_is_the_mean_over_random_orders_of_the_ties() -> None:
    """The tie-aware overlap is what random tie-breaking gives on average."""
    rng = np.random.default_rng(3)
    live = rng.random(400)
    cand = np.round(live + rng.normal(0, 0.2, 400), 1)  # heavy ties
    k = 37
    live_top = np.argsort(-live)[:k]
    draws = []
    for _ in range(4000):
        order = np.lexsort((rng.random(400), -cand))  # by score, ties in a random order
        draws.append(np.isin(live_top, order[:k]).mean())
    live_alert = np.zeros(400, bool)
    live_alert[live_top] = True
    ours = agreement(Sorted(live), Sorted(cand), float(live[live_top].min()))
    assert ours["alert_overlap_at_matched_rate"] == pytest.approx(np.mean(draws), abs=0.004)


def test_a_constant_candidate_has_auc_one_half_and_a_zero_width_interval(window) -> None:
    labels, live = window["labels"], window["live"]
    rate = float(np.mean(live >= THRESHOLD))
    lab = LabelledWindow(labels, np.ones(N), rate, samples=100, rows=N, seed=1)
    result = lab.compare(("live", live), ("constant", window["constant"]))
    auc = result["roc_auc"]
    assert auc["candidate"] == auc["candidate_ci_low"] == auc["candidate_ci_high"] == 0.5
    k = round(rate * N)
    assert result["recall_at_live_rate"]["candidate"] == pytest.approx(k / N, rel=1e-12)
    assert result["precision_at_live_rate"]["candidate"] == pytest.approx(labels.mean())
    assert result["average_precision"]["candidate"] == pytest.approx(
        average_precision_score(labels, window["constant"])
    )


@pytest.mark.parametrize("name", ["rounded", "same", "permuted"])
def test_each_replicate_is_the_metric_of_its_resampled_rows(window, name: str) -> None:
    """Replicate r with Poisson weights w is the metric of the rows repeated w times, ties
    included: the bootstrap treats ties exactly as the point estimate does."""
    rng = np.random.default_rng(8)
    rows = rng.choice(N, 4_000, replace=False)
    labels, scores = window["labels"][rows], window[name][rows]
    amounts = rng.lognormal(3, 1, len(rows)).astype(np.float32)
    rate = 0.013
    order = np.argsort(-scores, kind="stable")
    weights = rng.poisson(1.0, (3, len(rows))).astype(np.float32)
    y, a = labels[order].astype(np.float32), amounts[order]
    ours = replicates(y, a, rate, weights[:, order], tie_groups(scores[order]))
    for r in range(3):
        drawn = np.repeat(np.arange(len(rows)), weights[r].astype(int))
        want = point_metrics(scores[drawn], labels[drawn], amounts[drawn].astype(float), rate)
        got = dict(zip(METRICS, ours[:, r], strict=True))
        assert got["roc_auc"] == pytest.approx(roc_auc_score(labels[drawn], scores[drawn]))
        assert got["average_precision"] == pytest.approx(
            average_precision_score(labels[drawn], scores[drawn]), rel=1e-5
        )
        k = round(rate * len(drawn))
        chance = alert_chance(scores[drawn], k)
        caught = np.sum(chance * labels[drawn])
        assert got["recall_at_live_rate"] == pytest.approx(caught / labels[drawn].sum())
        assert got["precision_at_live_rate"] == pytest.approx(caught / k)
        assert got["amount_recall"] == pytest.approx(want["amount_recall"], rel=1e-4)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(20, 400),
    fraud=st.floats(0.01, 0.5),
    decimals=st.sampled_from([0, 1, 2, None]),
    rows=st.integers(10, 400),
    seed=st.integers(0, 2**16),
)
def test_intervals_stay_inside_the_metric_range(n, fraud, decimals, rows, seed) -> None:
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < fraud).astype(np.int8)
    labels[0], labels[1] = 1, 0  # both classes
    live = labels * rng.random(n) + rng.random(n) * 0.3
    cand = live if decimals is None else np.round(live, decimals)
    lab = LabelledWindow(labels, rng.random(n), 0.05, samples=40, rows=rows, seed=seed)
    result = lab.compare(("live", live), ("cand", cand))
    for name, figures in result.items():
        for part in ("live", "candidate", "delta"):
            low, high = figures[f"{part}_ci_low"], figures[f"{part}_ci_high"]
            bottom = -1.0 if part == "delta" else 0.0
            if np.isfinite(low):
                assert bottom <= low <= high <= 1.0, (name, part, low, high)
