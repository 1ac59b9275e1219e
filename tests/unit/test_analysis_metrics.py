"""Paired and labelled metrics: checked against scipy / scikit-learn on the same data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import average_precision_score, roc_auc_score

from analysis.bootstrap import METRICS, poisson_weights, replicates, tie_groups
from analysis.labelled import LabelledWindow, point_metrics
from analysis.metrics import (
    Sorted,
    agreement,
    distribution,
    ks_sorted,
    psi,
    wasserstein_sorted,
)
from analysis.ordering import argsort, order_statistics


@pytest.fixture(scope="module")
def rng() -> np.random.Generator:
    return np.random.default_rng(11)


@pytest.mark.parametrize(
    "values",
    [
        np.random.default_rng(1).beta(1, 20, 100_000),  # scores
        np.random.default_rng(2).normal(0, 1, 50_000),  # negatives
        np.round(np.random.default_rng(3).random(50_000), 3),  # heavy ties
        0.5 + np.random.default_rng(4).integers(0, 50, 20_000) * 1e-16,  # below the kept bits
        np.r_[np.arange(20_000) * 1e-3, np.arange(0, 20_000, 100) * 1e-3 - 1e-12],  # a few
        np.array([0.0, -0.0, 1e-300, -1e-300, 0.0]),
        np.array([0.3]),
        np.array([]),
        np.array([0.2, np.nan, 0.1, np.inf]),
    ],
)
def test_argsort_sorts_like_numpy(values: np.ndarray) -> None:
    order, ordered = argsort(values)
    assert np.array_equal(np.sort(order), np.arange(len(values)))  # a permutation
    assert np.array_equal(values[order], ordered, equal_nan=True)
    assert np.array_equal(ordered, np.sort(values), equal_nan=True)


@pytest.mark.parametrize(
    "values",
    [
        np.random.default_rng(1).gamma(2.0, 400.0, 200_000),  # latencies
        np.full(5000, 3.5),  # one batch time shared by every row
        np.round(np.random.default_rng(2).random(30_000) * 10),  # ties
        np.random.default_rng(3).normal(0, 5, 10_001),  # negatives
        np.array([0.0, -0.0, 1e-30, -1e-30, 2.0]),
        np.array([7.0]),
    ],
)
def test_order_statistics_are_the_sorted_values(values: np.ndarray) -> None:
    values = values.astype(np.float32)
    ranks = np.unique(np.r_[0, np.linspace(0, len(values) - 1, 300).astype(int), len(values) - 1])
    assert np.array_equal(order_statistics(values, ranks), np.sort(values)[ranks])


@pytest.mark.parametrize("decimals", [3, None])
def test_ks_of_equal_sizes_matches_scipy_across_blocks(
    rng: np.random.Generator, decimals: int | None
) -> None:
    """Paired samples have equal sizes; 300,000 values span several merge blocks."""
    live, cand = rng.beta(2, 8, 300_000), rng.beta(2.05, 8, 300_000)
    if decimals is not None:  # heavy ties across block edges
        live, cand = np.round(live, decimals), np.round(cand, decimals)
    ours = ks_sorted(np.sort(live), np.sort(cand))
    ks = stats.ks_2samp(live, cand)
    assert ours[0] == pytest.approx(ks.statistic, abs=1e-12)
    assert ours[1] == pytest.approx(ks.pvalue, rel=1e-9, abs=1e-300)


@pytest.mark.parametrize("n", [800, 40_000])
def test_distribution_matches_scipy(rng: np.random.Generator, n: int) -> None:
    live, cand = rng.beta(2, 8, n), rng.beta(2.3, 8, n + 13)
    ours = distribution(Sorted(live), Sorted(cand))
    ks = stats.ks_2samp(live, cand)
    assert ours["ks_statistic"] == pytest.approx(ks.statistic, abs=1e-12)
    assert ours["ks_pvalue"] == pytest.approx(ks.pvalue, rel=1e-9, abs=1e-300)
    assert ours["wasserstein"] == pytest.approx(stats.wasserstein_distance(live, cand), rel=1e-9)
    assert ours["live_quantiles"]["p50"] == pytest.approx(np.median(live))
    assert ours["candidate_quantiles"]["mean"] == pytest.approx(cand.mean())


def test_ties_are_handled_like_scipy(rng: np.random.Generator) -> None:
    live = np.round(rng.random(30_000), 2)
    cand = np.round(rng.random(30_000) ** 1.1, 2)
    a, b = np.sort(live), np.sort(cand)
    assert ks_sorted(a, b)[0] == pytest.approx(stats.ks_2samp(live, cand).statistic, abs=1e-12)
    assert wasserstein_sorted(a, b) == pytest.approx(stats.wasserstein_distance(live, cand))


def test_identical_model_has_psi_zero_and_full_agreement(rng: np.random.Generator) -> None:
    scores = rng.beta(1, 20, 50_000)
    same = Sorted(scores)
    dist, agree = distribution(same, Sorted(scores.copy())), agreement(same, same, 0.2)
    assert dist["psi"] == 0.0 and dist["ks_statistic"] == 0.0 and dist["wasserstein"] == 0.0
    assert agree["decision_agreement_at_live_threshold"] == 1.0
    assert agree["decision_agreement_at_matched_rate"] == 1.0
    assert agree["alert_overlap_at_matched_rate"] == 1.0
    assert agree["kappa_at_live_threshold"] == agree["kappa_at_matched_rate"] == 1.0
    assert agree["top1pct_overlap"] == 1.0
    assert agree["flips_to_alert"] == agree["flips_to_pass"] == 0
    assert agree["pearson"] == pytest.approx(1.0) and agree["spearman"] == pytest.approx(1.0)


def test_shifted_model_has_psi_above_the_usual_threshold(rng: np.random.Generator) -> None:
    live = rng.normal(0, 1, 50_000)
    assert psi(live, live + 0.8) > 0.25
    assert psi(live, live + 0.05) < 0.1


def test_correlations_flips_and_rates_match_direct_computation(rng: np.random.Generator) -> None:
    live = rng.random(20_000)
    cand = np.clip(live + rng.normal(0, 0.2, live.size), 0, 1) + rng.random(live.size) * 1e-9
    agree = agreement(Sorted(live), Sorted(cand), 0.7)
    assert agree["pearson"] == pytest.approx(stats.pearsonr(live, cand).statistic)
    assert agree["spearman"] == pytest.approx(stats.spearmanr(live, cand).statistic)
    assert agree["flips_to_alert"] == np.sum((cand >= 0.7) & (live < 0.7))
    assert agree["flips_to_pass"] == np.sum((cand < 0.7) & (live >= 0.7))
    assert agree["mean_abs_delta"] == pytest.approx(np.mean(np.abs(cand - live)))
    # at the matched threshold the candidate alerts on exactly as many transactions as live
    live_alerts = np.sum(live >= 0.7)
    assert np.sum(cand >= agree["matched_threshold"]) == live_alerts
    top_live, top_cand = set(np.argsort(live)[-200:]), set(np.argsort(cand)[-200:])
    assert agree["top1pct_overlap"] == pytest.approx(len(top_live & top_cand) / 200)


@pytest.mark.parametrize("decimals", [2, None])  # ties, and distinct scores (a faster path)
def test_labelled_point_metrics_match_scikit_learn(
    rng: np.random.Generator, decimals: int | None
) -> None:
    labels = (rng.random(30_000) < 0.05).astype(np.int8)
    scores = labels * 0.3 + rng.random(labels.size) * 0.8
    if decimals is not None:
        scores = np.round(np.clip(scores, 0, 1), decimals)
    else:
        assert len(np.unique(scores)) == len(scores)
    amounts = rng.lognormal(3, 1, labels.size)
    ours = point_metrics(scores, labels, amounts, 0.05)
    assert ours["roc_auc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert ours["average_precision"] == pytest.approx(
        average_precision_score(labels, scores), abs=1e-12
    )
    # k = 5 % of the rows alert; rows tied at the k-th score share the places left there
    chance = alert_chance(scores, round(0.05 * labels.size))
    if decimals is None:
        assert set(np.unique(chance)) == {0.0, 1.0}
    caught = np.sum(chance * labels)
    assert ours["recall_at_live_rate"] == pytest.approx(caught / labels.sum(), rel=1e-12)
    assert ours["precision_at_live_rate"] == pytest.approx(caught / chance.sum(), rel=1e-12)
    fraud_amount = amounts[labels == 1].sum()
    assert ours["amount_recall"] == pytest.approx(
        np.sum(chance * labels * amounts) / fraud_amount, rel=1e-12
    )


def alert_chance(scores: np.ndarray, k: int) -> np.ndarray:
    """Each row's chance to be among the k riskiest when ties are broken at random, from
    scipy's min and max ranks: the places left at the row's tie group / the group's size."""
    first = stats.rankdata(-scores, method="min")  # 1-based place of the group's first row
    last = stats.rankdata(-scores, method="max")
    return np.clip((k - (first - 1)) / (last - first + 1), 0.0, 1.0)


def test_bootstrap_weights_are_poisson_one() -> None:
    weights = poisson_weights(np.random.default_rng(5), (40, 50_000))
    assert weights.dtype == np.float32 and weights.min() == 0
    counts = np.bincount(weights.astype(np.int64).ravel())
    observed = np.r_[counts[:7], counts[7:].sum()]
    expected = np.r_[stats.poisson.pmf(np.arange(7), 1.0), stats.poisson.sf(6, 1.0)]
    assert stats.chisquare(observed, expected * weights.size).pvalue > 1e-3
    assert weights.mean() == pytest.approx(1.0, abs=0.003)
    assert weights.var() == pytest.approx(1.0, abs=0.006)


def test_random_model_has_auc_near_one_half_and_the_ci_covers_it(
    rng: np.random.Generator,
) -> None:
    n = 60_000
    labels = (rng.random(n) < 0.05).astype(np.int8)
    live = np.clip(labels * 0.4 + rng.random(n), 0, None)
    window = LabelledWindow(labels, np.ones(n), 0.05, samples=200, rows=20_000, seed=3)
    result = window.compare(("live", live), ("random", rng.random(n)))["roc_auc"]
    assert result["candidate"] == pytest.approx(0.5, abs=0.02)
    assert result["candidate_ci_low"] < 0.5 < result["candidate_ci_high"]
    assert result["candidate_ci_high"] - result["candidate_ci_low"] < 0.05
    assert result["delta_ci_high"] < 0  # clearly worse than live
    assert result["live_ci_low"] < result["live"] < result["live_ci_high"]


def test_bootstrap_interval_width_is_close_to_the_full_bootstrap(
    rng: np.random.Generator,
) -> None:
    """m-out-of-n with sqrt(m/n) rescaling gives about the width of the plain bootstrap."""
    n = 20_000
    labels = (rng.random(n) < 0.1).astype(np.int8)
    scores = labels * 0.5 + rng.random(n)
    full = LabelledWindow(labels, np.ones(n), 0.1, samples=200, rows=n, seed=5)
    sampled = LabelledWindow(labels, np.ones(n), 0.1, samples=200, rows=5_000, seed=5)
    widths = []
    for window in (full, sampled):
        auc = window.compare(("live", scores), ("same", scores))["roc_auc"]
        widths.append(auc["live_ci_high"] - auc["live_ci_low"])
    assert widths[1] == pytest.approx(widths[0], rel=0.35)
    # the plain bootstrap's own width: standard error of AUC by resampling with sklearn
    replicates = [
        roc_auc_score(labels[idx], scores[idx])
        for idx in (rng.integers(0, n, n) for _ in range(60))
    ]
    assert widths[0] == pytest.approx(3.92 * np.std(replicates), rel=0.35)


def test_figures_do_not_depend_on_row_order_even_with_ties(rng: np.random.Generator) -> None:
    live = np.round(rng.random(20_000), 2)
    cand = np.round(np.clip(live + rng.normal(0, 0.1, live.size), 0, 1), 2)
    agree = agreement(Sorted(live), Sorted(cand), 0.5)
    assert agree["spearman"] == pytest.approx(stats.spearmanr(live, cand).statistic)
    shuffle = rng.permutation(live.size)
    again = agreement(Sorted(live[shuffle]), Sorted(cand[shuffle]), 0.5)
    for name, value in agree.items():
        assert again[name] == pytest.approx(value, rel=1e-12), name


def test_a_replicate_whose_top_rows_are_not_drawn_has_the_figures_of_the_rest(
    rng: np.random.Generator,
) -> None:
    """Weight 0 on the riskiest rows: the replicate is the data without them, not NaN."""
    n = 2_000
    labels = (rng.random(n) < 0.1).astype(np.int8)
    scores = labels * 0.3 + rng.random(n)
    order = np.argsort(-scores)
    y, a = labels[order].astype(np.float32), np.ones(n, np.float32)
    weights = np.ones((1, n), np.float32)
    weights[0, :3] = 0.0  # the three riskiest transactions were not drawn
    groups = tie_groups(scores[order])
    figures = dict(zip(METRICS, replicates(y, a, 0.05, weights, groups)[:, 0], strict=True))
    rest = order[3:]
    assert figures["average_precision"] == pytest.approx(
        average_precision_score(labels[rest], scores[rest]), rel=1e-5
    )
    assert figures["roc_auc"] == pytest.approx(roc_auc_score(labels[rest], scores[rest]), rel=1e-5)


def test_every_average_precision_replicate_is_finite(rng: np.random.Generator) -> None:
    n = 3_000
    labels = (rng.random(n) < 0.02).astype(np.int8)
    scores = labels * 0.5 + rng.random(n)
    window = LabelledWindow(labels, np.ones(n), 0.02, samples=200, rows=n, seed=9)
    _point, reps = window.model("m", scores)
    assert reps is not None
    assert np.isfinite(reps[METRICS.index("average_precision")]).all()
