"""Decision curves: recall and precision at each alert rate with the gate's tie rule, checked
against scikit-learn and against analysis.ties' expected alerts; QQ and histogram ranges."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import precision_score, recall_score

from analysis import ties
from analysis.curves import RATES, decision_curve
from analysis.metrics import Sorted, distribution


def _descending(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-scores, kind="stable")
    return scores[order], labels[order]


def test_distinct_scores_match_scikit_learn_at_every_rate() -> None:
    rng = np.random.default_rng(3)
    labels = (rng.random(5000) < 0.03).astype(np.int8)
    scores = rng.random(5000) + labels * 0.3
    curve = decision_curve(*_descending(scores, labels), threshold=0.9)
    n = len(scores)
    for rate, recall, precision in zip(
        curve["alert_rate"], curve["recall"], curve["precision"], strict=True
    ):
        k = round(rate * n)
        alerts = scores >= np.sort(scores)[-k]
        assert recall == pytest.approx(recall_score(labels, alerts))
        assert precision == pytest.approx(precision_score(labels, alerts))
    point = curve["at_threshold"]
    alerts = scores >= 0.9
    assert point["alert_rate"] == pytest.approx(alerts.mean())
    assert point["recall"] == pytest.approx(recall_score(labels, alerts))
    assert point["precision"] == pytest.approx(precision_score(labels, alerts))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 6), min_size=3, max_size=80),
    st.lists(st.booleans(), min_size=3, max_size=80),
)
def test_tied_scores_share_the_cut_as_the_gate_does(values: list[int], flags: list[bool]) -> None:
    """With ties, the frauds caught at k alerts are the expected number over every order of the
    tied scores: exactly what analysis.ties counts for the gate's top-k figures."""
    n = min(len(values), len(flags))
    scores, labels = np.array(values[:n], float) / 6, np.array(flags[:n], np.int8)
    if labels.sum() in (0, n):
        assert decision_curve(*_descending(scores, labels), threshold=0.5) == {}
        return
    curve = decision_curve(*_descending(scores, labels), threshold=0.5)
    ascending = np.sort(scores)
    for rate, recall in zip(curve["alert_rate"], curve["recall"], strict=True):
        k = round(rate * n)
        caught = ties.alerts_within(scores, ties.cut(ascending, k), labels == 1)
        assert recall == pytest.approx(caught / labels.sum())
    alerts = scores >= 0.5
    assert curve["at_threshold"]["recall"] == pytest.approx(labels[alerts].sum() / labels.sum())


def test_a_constant_model_catches_frauds_in_proportion() -> None:
    labels = np.r_[np.ones(10, np.int8), np.zeros(990, np.int8)]
    curve = decision_curve(np.full(1000, 0.3), labels, threshold=0.5)
    assert np.allclose(curve["recall"], curve["alert_rate"])
    assert curve["at_threshold"] == {
        "threshold": 0.5,
        "alert_rate": 0.0,
        "recall": 0.0,
        "precision": None,
    }
    assert len(curve["alert_rate"]) == len({max(1, round(r * 1000)) for r in RATES})


def test_qq_spans_the_whole_range_and_the_histogram_decades() -> None:
    rng = np.random.default_rng(5)
    live = 1 / (1 + np.exp(-rng.normal(-5, 2, 20_000)))
    cand = 1 / (1 + np.exp(-rng.normal(-4, 2, 20_000)))
    dist = distribution(Sorted(live), Sorted(cand))
    qq = dist["qq"]
    assert qq["q"][0] == 0.0 and qq["q"][-1] == 1.0 and len(qq["q"]) == len(qq["live"])
    assert qq["live"][0] == live.min() and qq["live"][-1] == live.max()
    assert qq["candidate"][-1] == cand.max()
    assert qq["live"][qq["q"].index(0.5)] == pytest.approx(np.quantile(live, 0.5))
    hist = dist["histogram"]
    assert hist["scale"] == "log"
    assert hist["edges"][0] == min(live.min(), cand.min())
    assert sum(hist["live"]) == len(live) and sum(hist["candidate"]) == len(cand)
    counts, _ = np.histogram(live, bins=hist["edges"])
    assert hist["live"] == counts.tolist()
