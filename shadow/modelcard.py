"""Model card - the one definition of what a registered model is, and how it is read from ONNX.

A card names the model (``name@version``), pins its file by sha256, lists the features it takes
with their ONNX element types, says which output is the score and carries the decision threshold
and a canary transaction with the score the model gave it at registration.

Inputs come in two shapes (``input_kind``):

- ``columns``: one named input per feature, ``[N, 1]`` or ``[N]``, as converted scikit-learn
  pipelines have; the input name is the transaction feature name;
- ``tensor``: one 2-D float input ``[N, k]``; the feature order is in the model's metadata
  property ``features`` (a JSON list or a comma-separated string of names).

Feature types are ONNX element types: ``float`` (float32), ``double``, ``int64``, ``bool``,
``string``. The score output is a probability matrix ``[N, 2]`` (column 1 is the positive class;
converters with zipmap off) or a plain score ``[N]`` / ``[N, 1]``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import onnx

FEATURES_METADATA = "features"
"""Metadata property of a tensor-kind model holding its feature order."""
THRESHOLD_METADATA = "threshold"
"""Metadata property holding the decision threshold, used when registration names none."""
DECISION_ALERT = "alert"
DECISION_PASS = "pass"

_ELEMENT_TYPES = {1: "float", 11: "double", 7: "int64", 9: "bool", 8: "string"}
_SCORE_NAMES = ("probabilities", "probability", "output_probability", "score", "scores")


class ModelCard(BaseModel):
    """Everything the registry, the worker and the analysis know about one model version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_id: str
    """``name@version``."""
    name: str
    version: str
    sha256: str
    """Hex digest of the ONNX file as stored; checked before every session is created."""
    features: dict[str, str]
    """Feature name -> ONNX element type, in input order."""
    input_kind: Literal["tensor", "columns"]
    score_output: str
    """Name of the output holding the positive-class probability (or a plain score)."""
    threshold: float = 0.5
    """Decision threshold: score >= threshold means alert."""
    canary: dict[str, Any] = Field(default_factory=dict)
    """A transaction's features that the model must keep scoring as ``canary_score``."""
    canary_score: float | None = None
    owner: str = ""
    description: str = ""
    created_at: dt.datetime = Field(default_factory=lambda: dt.datetime.now(dt.UTC))
    training_data: str = ""
    """Free-text reference to the data the model was trained on."""

    def decision(self, score: float) -> str:
        """``alert`` when the score reaches the threshold, else ``pass``."""
        return DECISION_ALERT if score >= self.threshold else DECISION_PASS

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelCard:
        return cls.model_validate_json(text)


def model_id_of(name: str, version: str) -> str:
    return f"{name}@{version}"


def split_model_id(model_id: str) -> tuple[str, str]:
    """``name@version`` -> (name, version); ValueError when it is not of that form."""
    name, sep, version = model_id.rpartition("@")
    if not sep or not name or not version:
        raise ValueError(f"{model_id!r} is not of the form name@version")
    return name, version


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def card_for_file(path: Path, model_id: str, **fields: Any) -> ModelCard:
    """A card read from an ONNX file itself (signature, sha256), for models outside the
    registry: the live model of a synthetic service, reference models, benches."""
    import onnx

    data = Path(path).read_bytes()
    name, version = split_model_id(model_id)
    signature = read_signature(onnx.load_from_string(data))
    return ModelCard(
        model_id=model_id,
        name=name,
        version=version,
        sha256=sha256_of(data),
        **signature.model_dump(),
        **fields,
    )


class Signature(BaseModel):
    """What a model takes and gives, read from its ONNX graph."""

    model_config = ConfigDict(frozen=True)

    input_kind: Literal["tensor", "columns"]
    features: dict[str, str]
    score_output: str


def read_signature(model: onnx.ModelProto) -> Signature:
    """The input kind, features and score output of a parsed model; ValueError with a reason."""
    inputs = [
        i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}
    ]
    if not inputs:
        raise ValueError("the model has no inputs")
    score = _score_output(model)
    has_order = any(p.key == FEATURES_METADATA for p in model.metadata_props)
    wide = (_width(inputs[0]) or 0) > 1
    if len(inputs) == 1 and _rank(inputs[0]) == 2 and (has_order or wide):
        return Signature(input_kind="tensor", features=_tensor_features(model), score_output=score)
    features: dict[str, str] = {}
    for item in inputs:
        if _rank(item) not in (1, 2) or _width(item) not in (None, 1):
            raise ValueError(f"input {item.name} is not one column ([N] or [N, 1])")
        features[item.name] = _element_type(item)
    return Signature(input_kind="columns", features=features, score_output=score)


def _tensor_features(model: onnx.ModelProto) -> dict[str, str]:
    (item,) = model.graph.input
    element = _element_type(item)
    if element not in ("float", "double"):
        raise ValueError(f"the 2-D input {item.name} is {element}, expected float")
    meta = {p.key: p.value for p in model.metadata_props}
    raw = meta.get(FEATURES_METADATA, "").strip()
    if not raw:
        raise ValueError(
            f"one 2-D input ({item.name}) but no feature order in metadata '{FEATURES_METADATA}'"
        )
    names = _feature_order(raw)
    width = _width(item)
    if width is not None and width != len(names):
        raise ValueError(f"input {item.name} has {width} columns but metadata names {len(names)}")
    if len(set(names)) != len(names):
        raise ValueError("the metadata feature order names a feature twice")
    return dict.fromkeys(names, element)


def _feature_order(raw: str) -> list[str]:
    """The names in metadata 'features': a JSON list of strings, or `a,b,c`."""
    where = f"metadata '{FEATURES_METADATA}'"
    if not raw.startswith(("[", "{")):
        names: object = [n.strip() for n in raw.split(",")]
    else:
        try:
            names = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where} is not a valid JSON list ({exc.msg})") from None
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise ValueError(
            f'{where} must list feature names (["amount", "device_risk"] or amount,device_risk)'
        )
    return names


def _score_output(model: onnx.ModelProto) -> str:
    numeric = [o for o in model.graph.output if o.type.tensor_type.elem_type in (1, 11)]
    if not numeric:
        raise ValueError("the model has no float output to take a score from")
    for wanted in _SCORE_NAMES:
        for output in numeric:
            if output.name.lower() == wanted:
                return output.name
    return numeric[-1].name


def _element_type(item: Any) -> str:
    code = item.type.tensor_type.elem_type
    if code not in _ELEMENT_TYPES:
        raise ValueError(f"input {item.name} has an unsupported element type ({code})")
    return _ELEMENT_TYPES[code]


def _rank(item: Any) -> int:
    return len(item.type.tensor_type.shape.dim)


def _width(item: Any) -> int | None:
    dims = item.type.tensor_type.shape.dim
    if len(dims) < 2 or not dims[1].HasField("dim_value"):
        return None
    return int(dims[1].dim_value)
