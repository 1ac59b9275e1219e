"""The reference models: OnnxScorer equals ONNX Runtime's own output, canaries, registration.

The models are built once per (seed, library versions) and cached under ~/.cache/shadow/models.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from shadow.envelope import LiveScore, decode, encode, make_envelope
from shadow.kit.reference_models import REFERENCE_NAMES, build_reference_models, reference_canaries
from shadow.kit.synthetic import FEATURE_NAMES, TransactionGenerator, feature_dicts
from shadow.modelcard import ModelCard, read_signature, sha256_of
from shadow.objectstore import LocalStore
from shadow.registry import ModelRegistry
from shadow.scorer import FeatureFrame, OnnxScorer


@pytest.fixture(scope="module")
def models():
    return build_reference_models()


@pytest.fixture(scope="module")
def traffic() -> pd.DataFrame:
    return TransactionGenerator(seed=99, fraud_rate=0.02).batch(3000, tps=1.0)


def _card(name: str, path) -> ModelCard:
    data = path.read_bytes()
    signature = read_signature(onnx.load_from_string(data))
    return ModelCard(
        model_id=f"{name}@ref",
        name=name,
        version="ref",
        sha256=sha256_of(data),
        **signature.model_dump(),
    )


def _runtime_scores(path, card: ModelCard, frame: pd.DataFrame) -> np.ndarray:
    """ONNX Runtime on inputs built straight from the DataFrame, not through the scorer."""
    options = onnxruntime.SessionOptions()
    options.use_per_session_threads = False  # the process has the scorer's global pool
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    if card.input_kind == "tensor":
        feeds = {"input": frame[list(card.features)].to_numpy(np.float32)}
    else:
        feeds = {}
        for item in session.get_inputs():
            column = frame[item.name]
            if item.type == "tensor(string)":
                feeds[item.name] = column.astype(str).to_numpy(object).reshape(-1, 1)
            else:
                feeds[item.name] = column.to_numpy(np.float32).reshape(-1, 1)
    (output,) = session.run([card.score_output], feeds)
    return output[:, 1].astype(np.float64)


def test_all_four_models_are_built(models):
    assert set(models) == set(REFERENCE_NAMES)
    kinds = {name: _card(name, m.path).input_kind for name, m in models.items()}
    assert kinds == {
        "lr": "columns",
        "mlp": "columns",
        "gbdt": "tensor",
        "degraded": "tensor",
        "baseline": "columns",
    }


@pytest.mark.parametrize("name", REFERENCE_NAMES)
def test_scorer_equals_onnxruntime_output(models, traffic, name):
    path = models[name].path
    card = _card(name, path)
    live = LiveScore("live@1", 0.0)
    envelopes = [
        make_envelope(txn_id, features, live, int(at))
        for txn_id, at, features in zip(
            traffic["txn_id"], traffic["event_time"], feature_dicts(traffic), strict=True
        )
    ]
    batch = OnnxScorer(card, path).score(envelopes)
    expected = _runtime_scores(path, card, traffic)
    np.testing.assert_allclose(batch.scores, expected, rtol=1e-6, atol=1e-9)
    missing = (
        int(traffic["email_age_days"].isna().sum()) if "email_age_days" in card.features else 0
    )
    assert batch.missing == missing


def test_the_degraded_candidate_is_clearly_worse(models, traffic):
    auc = {}
    for name in ("gbdt", "degraded"):
        scorer = OnnxScorer(_card(name, models[name].path), models[name].path)
        auc[name] = roc_auc_score(
            traffic["label"], scorer.score_features(feature_dicts(traffic)).scores
        )
    assert auc["gbdt"] > 0.9
    assert auc["gbdt"] - auc["degraded"] > 0.03


def test_reference_models_register_with_their_canaries(models, tmp_path):
    registry = ModelRegistry(f"sqlite:///{tmp_path}/r.db", LocalStore(tmp_path / "store"))
    canaries = reference_canaries(models)
    for name, (path, info) in models.items():
        card = registry.register(path, name, "1", threshold=0.5, **info)
        assert card.canary_score == pytest.approx(canaries[name][1], abs=1e-6)
        assert set(card.features) <= set(FEATURE_NAMES)
    assert len(registry.list("registered")) == len(REFERENCE_NAMES)
    registry.close()


def test_one_frame_of_decoded_envelopes_feeds_every_model_as_onnxruntime_is_fed(models, traffic):
    # the worker's path: Kafka bytes -> envelopes -> one FeatureFrame -> every model in turn
    live = LiveScore("live@1", 0.0)
    envelopes = [
        decode(encode(make_envelope(txn_id, features, live, int(at))))
        for txn_id, at, features in zip(
            traffic["txn_id"], traffic["event_time"], feature_dicts(traffic), strict=True
        )
    ]
    frame = FeatureFrame.of(envelopes)
    for name in REFERENCE_NAMES:
        path = models[name].path
        card = _card(name, path)
        shared = OnnxScorer(card, path).score_columns(frame).scores
        np.testing.assert_array_equal(shared, OnnxScorer(card, path).score(envelopes).scores)
        expected = _runtime_scores(path, card, traffic)
        np.testing.assert_array_equal(shared, expected)
