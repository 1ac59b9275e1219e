"""The model card: one definition, JSON round trip, signatures read from ONNX graphs."""

from __future__ import annotations

import onnx
import pytest

from shadow.kit.reference_models import write_tiny_model
from shadow.modelcard import ModelCard, read_signature, split_model_id


def test_card_round_trips_through_json():
    card = ModelCard(
        model_id="fraud@3",
        name="fraud",
        version="3",
        sha256="ab" * 32,
        features={"amount": "float", "merchant_category": "string"},
        input_kind="columns",
        score_output="probabilities",
        threshold=0.7,
        canary={"amount": 12.5, "merchant_category": "5411", "card_present": True},
        canary_score=0.25,
        owner="risk",
        training_data="s3://bucket/train/2026-01",
    )
    again = ModelCard.from_json(card.to_json())
    assert again == card
    assert list(again.features) == ["amount", "merchant_category"]
    with pytest.raises(ValueError, match="frozen"):
        # type: ignore below: assigning to a frozen model, on purpose
        card.threshold = 0.1  # type: ignore[misc]


def test_model_ids_split_on_the_last_at():
    assert split_model_id("fraud@7") == ("fraud", "7")
    with pytest.raises(ValueError, match="name@version"):
        split_model_id("fraud")


def test_signature_of_a_columns_model(tmp_path):
    model = onnx.load(write_tiny_model(tmp_path / "c.onnx", "columns"))
    signature = read_signature(model)
    assert signature.input_kind == "columns"
    assert signature.features == {
        "amount": "float",
        "device_risk": "float",
        "merchant_category": "string",
    }
    assert signature.score_output == "probabilities"


def test_signature_of_a_tensor_model_and_its_metadata(tmp_path):
    model = onnx.load(write_tiny_model(tmp_path / "t.onnx", "tensor"))
    signature = read_signature(model)
    assert signature.input_kind == "tensor"
    assert list(signature.features) == ["amount", "device_risk", "ip_risk"]
    assert signature.score_output == "score"
    model.metadata_props[0].value = "amount, device_risk"
    with pytest.raises(ValueError, match="3 columns but metadata names 2"):
        read_signature(model)
    del model.metadata_props[:]
    with pytest.raises(ValueError, match="no feature order"):
        read_signature(model)
