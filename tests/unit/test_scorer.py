"""OnnxScorer on tiny hand-built models: scores, missing values, failures, integrity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from shadow.envelope import LiveScore, make_envelope
from shadow.errors import ModelError
from shadow.modelcard import ModelCard, read_signature, sha256_of
from shadow.reference_models import write_tiny_model
from shadow.scorer import OnnxScorer, shared_thread_pool


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
