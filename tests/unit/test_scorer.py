"""OnnxScorer on tiny hand-built models: scores, missing values, failures, integrity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from shadow.envelope import LiveScore, make_envelope
from shadow.errors import ModelError
from shadow.kit.reference_models import write_tiny_model
from shadow.modelcard import ModelCard, read_signature, sha256_of
from shadow.scorer import FeatureFrame, OnnxScorer, shared_thread_pool


def _card(path: Path, canary: dict | None = None) -> ModelCard:
    data = path.read_bytes()
    signature = read_signature(onnx.load_from_string(data))
    return ModelCard(
        model_id=f"{path.stem}@1",
        name=path.stem,
        version="1",
        sha256=sha256_of(data),
        canary=canary or {},
        **signature.model_dump(),
    )


def _scorer(tmp_path: Path, kind: str, weight: float = 1.0) -> OnnxScorer:
    path = write_tiny_model(tmp_path / f"{kind}.onnx", kind, weight)
    return OnnxScorer(_card(path), path)


def _envelopes(rows: list[dict]) -> list:
    live = LiveScore("fraud@1", 0.1)
    return [make_envelope(f"t{i}", row, live, 1_767_225_600_000) for i, row in enumerate(rows)]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def test_columns_model_scores_the_positive_class(tmp_path):
    scorer = _scorer(tmp_path, "columns")
    rows = [
        {"amount": 100.0, "device_risk": 0.5, "merchant_category": "7995"},
        {"amount": 20, "device_risk": 0.0, "merchant_category": "5411"},
        {"amount": 250.5, "device_risk": 0.9, "merchant_category": "4829", "extra": True},
    ]
    batch = scorer.score(_envelopes(rows))
    expected = _sigmoid(np.array([1.0 + 1.5 + 1.0 - 2, 0.2 - 2, 2.505 + 2.7 + 0.5 - 2]))
    assert batch.scores.dtype == np.float64 and batch.scores.shape == (3,)
    np.testing.assert_allclose(batch.scores, expected, rtol=1e-6)
    assert batch.missing == 0
    assert batch.seconds > 0


def test_tensor_model_takes_features_in_metadata_order(tmp_path):
    scorer = _scorer(tmp_path, "tensor")
    assert list(scorer.card.features) == ["amount", "device_risk", "ip_risk"]
    rows = [{"ip_risk": 0.5, "amount": 50.0, "device_risk": 0.2}]
    batch = scorer.score(_envelopes(rows))
    np.testing.assert_allclose(batch.scores, _sigmoid(np.array([0.5 + 0.6 + 1.0 - 2])), rtol=1e-6)


def test_missing_values_are_filled_and_counted(tmp_path):
    scorer = _scorer(tmp_path, "columns")
    rows = [
        {"amount": 100.0, "device_risk": None},  # None and an absent string
        {"amount": "not a number", "device_risk": 0.1, "merchant_category": "7995"},
        {"amount": 10.0, "device_risk": 0.1, "merchant_category": "7995"},
    ]
    batch = scorer.score(_envelopes(rows))
    assert batch.missing == 3
    assert np.isnan(batch.scores[0]) and np.isnan(batch.scores[1])
    np.testing.assert_allclose(batch.scores[2], _sigmoid(np.array(0.1 + 0.3 + 1 - 2)), rtol=1e-6)
    tensor = _scorer(tmp_path, "tensor").score(_envelopes([{"amount": 1.0}]))
    assert tensor.missing == 2


def test_an_empty_batch_scores_nothing(tmp_path):
    batch = _scorer(tmp_path, "columns").score([])
    assert batch.scores.shape == (0,) and batch.missing == 0


def test_a_model_that_raises_fails_that_batch_with_model_error(tmp_path):
    scorer = _scorer(tmp_path, "failing")
    with pytest.raises(ModelError, match=r"failing@1: scoring failed"):
        scorer.score(_envelopes([{"amount": 1.0}]))


def test_a_model_answering_the_wrong_shape_fails_with_model_error(tmp_path):
    scorer = _scorer(tmp_path, "wrong_shape")
    with pytest.raises(ModelError, match=r"shape \(\) for 3 rows"):
        scorer.score(_envelopes([{"amount": 1.0}] * 3))


def test_a_tampered_file_is_refused_before_a_session_exists(tmp_path):
    path = write_tiny_model(tmp_path / "m.onnx", "columns")
    card = _card(path)
    write_tiny_model(path, "columns", weight=3.0)
    with pytest.raises(ModelError, match="sha256 mismatch"):
        OnnxScorer(card, path)
    with pytest.raises(ModelError, match="cannot read"):
        OnnxScorer(card, tmp_path / "gone.onnx")


def test_canary_is_scored_from_the_card(tmp_path):
    path = write_tiny_model(tmp_path / "m.onnx", "columns")
    canary = {"amount": 100.0, "device_risk": 0.5, "merchant_category": "7995"}
    scorer = OnnxScorer(_card(path, canary), path)
    assert scorer.score_canary() == pytest.approx(float(_sigmoid(np.array(1.5))), rel=1e-6)


def test_the_thread_pool_is_shared_and_sized_once(tmp_path):
    first = shared_thread_pool(1)
    assert shared_thread_pool(first + 1) == first
    scorers = [_scorer(tmp_path, "columns", weight=w) for w in (1.0, 2.0)]
    assert all(s._session.get_session_options().use_per_session_threads is False for s in scorers)


MIXED_ROWS = [
    {"amount": 100.0, "device_risk": 0.5, "merchant_category": "7995"},
    {"amount": 20, "device_risk": True, "merchant_category": 4829},
    {"device_risk": 0.25},  # amount and merchant_category absent
    {"amount": None, "device_risk": 0.75, "merchant_category": None},
    {"amount": float("nan"), "device_risk": 0.1, "merchant_category": "5411"},
    {"amount": "12.5", "device_risk": "high", "merchant_category": "7995"},
    {"amount": 10**400, "device_risk": 0.2, "merchant_category": "4829"},  # beyond float range
]


def test_a_batch_scores_each_row_as_it_would_score_alone(tmp_path):
    # the whole batch takes the gathered-block path or falls back column by column; either
    # way every row gets the score (and the fills) it gets on its own
    for kind in ("columns", "tensor"):
        scorer = _scorer(tmp_path, kind)
        batch = scorer.score_features(MIXED_ROWS)
        alone = [scorer.score_features([row]) for row in MIXED_ROWS]
        np.testing.assert_array_equal(batch.scores, [a.scores[0] for a in alone])
        assert batch.missing == sum(a.missing for a in alone)
    alone = [_scorer(tmp_path, "columns").score_features([row]).missing for row in MIXED_ROWS]
    # None, absent, NaN, a word and a number beyond float range are filled; True, 20 and
    # "12.5" go into a float column as numbers
    assert alone == [0, 0, 2, 2, 1, 1, 1]


def test_a_feature_beyond_float_range_is_filled_not_a_failed_batch(tmp_path):
    live = LiveScore("fraud@1", 0.1)
    good = {"amount": 50.0, "device_risk": 0.2, "ip_risk": 0.5}
    # decode() refuses it now (out_of_range); the scorer still fills it when handed one
    rows = [good, {**good, "amount": 10**400}]
    envelopes = [make_envelope(f"t{i}", r, live, 5) for i, r in enumerate(rows)]
    batch = _scorer(tmp_path, "tensor").score(envelopes)
    np.testing.assert_allclose(batch.scores[0], _sigmoid(np.array(0.5 + 0.6 + 1.0 - 2)), rtol=1e-6)
    assert np.isnan(batch.scores[1]) and batch.missing == 1


def test_a_frame_builds_each_column_once_and_shares_it_read_only(tmp_path):
    rows = [{"amount": float(i), "device_risk": 0.1, "ip_risk": 0.2} for i in range(5)]
    frame = FeatureFrame.of(_envelopes(rows))
    columns, tensor = _scorer(tmp_path, "columns"), _scorer(tmp_path, "tensor")
    together = [columns.score_columns(frame).scores, tensor.score_columns(frame).scores]
    amount, filled = frame.column("amount", "float")
    assert frame.column("amount", "float")[0] is amount and filled == 0
    assert amount.dtype == np.float32 and not amount.flags.writeable
    np.testing.assert_array_equal(amount, np.arange(5, dtype=np.float32))
    np.testing.assert_array_equal(together[0], columns.score(_envelopes(rows)).scores)
    np.testing.assert_array_equal(together[1], tensor.score(_envelopes(rows)).scores)
