"""Admission checks - what a model file must pass before the registry accepts it.

Each check raises ModelError with a one-line reason: the file does not parse or load, its sha256
is not the one expected, an input matches no transaction feature, its external data points
outside its folder or through a symlink, or it does not reproduce its canary score.
"""

from __future__ import annotations

import logging
import math
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shadow.errors import ModelError, RegistryError
from shadow.modelcard import THRESHOLD_METADATA, ModelCard, Signature, read_signature, sha256_of

if TYPE_CHECKING:
    import onnx

logger = logging.getLogger(__name__)

CANARY_TOLERANCE = 1e-5
"""Largest difference allowed between a canary's expected and actual score."""
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def read_model_bytes(model_id: str, path: Path) -> tuple[onnx.ModelProto, bytes]:
    """Parse the file; returns the model and the single-file bytes to store.

    A model with external data (checked: inside its folder, no symlinks) is stored with that data
    embedded, so the stored object is one self-contained file pinned by one sha256.
    """
    import onnx

    if not path.is_file():
        raise ModelError(model_id, f"{path} is not a file")
    raw = path.read_bytes()
    try:
        model = onnx.load_from_string(raw)
    except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and friends
        raise ModelError(model_id, f"does not parse as ONNX: {type(exc).__name__}") from None
    if not model.graph.node and not model.graph.output:
        raise ModelError(model_id, "does not parse as ONNX: the file holds no graph")
    locations = list(_external_locations(model))
    if not locations:
        return model, raw
    folder = path.resolve().parent
    for location in locations:
        check_external_location(model_id, path.parent, folder, location)
    from onnx.external_data_helper import load_external_data_for_model

    try:
        load_external_data_for_model(model, str(path.parent))
    except Exception as exc:  # noqa: BLE001
        raise ModelError(model_id, f"cannot read its external data: {exc}") from None
    return model, model.SerializeToString()


def _external_locations(model: onnx.ModelProto) -> Iterable[str]:
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    for tensor in _get_all_tensors(model):
        if uses_external_data(tensor):
            entries = {e.key: e.value for e in tensor.external_data}
            yield entries.get("location", "")


def check_external_location(model_id: str, base: Path, folder: Path, location: str) -> None:
    """Refuse external data that leaves the model's folder or goes through a symlink."""
    if not location or os.path.isabs(location) or Path(location).drive:
        raise ModelError(model_id, f"external data {location!r} is not a relative path")
    if ".." in Path(location).parts or not (folder / location).resolve().is_relative_to(folder):
        raise ModelError(model_id, f"external data {location!r} points outside the model's folder")
    current = base
    for part in Path(location).parts:
        current = current / part
        if current.is_symlink():
            raise ModelError(model_id, f"external data {location!r} goes through a symlink")
    if not current.is_file():
        raise ModelError(model_id, f"external data {location!r} does not exist")


def check_sha256(model_id: str, data: bytes, expected: str | None) -> str:
    """The digest of the bytes; ModelError when an expected digest was given and differs."""
    digest = sha256_of(data)
    if expected and expected.lower() != digest:
        raise ModelError(
            model_id, f"sha256 mismatch: the file has {digest}, expected {expected.lower()}"
        )
    return digest


def signature_of(model_id: str, model: onnx.ModelProto) -> Signature:
    try:
        return read_signature(model)
    except ValueError as exc:
        raise ModelError(model_id, f"unusable inputs or outputs: {exc}") from None


def check_features(model_id: str, signature: Signature, known: Iterable[str] | None) -> None:
    """Every model input must be a transaction feature, when the feature list is given."""
    if known is None:
        return
    known_set = set(known)
    unknown = [name for name in signature.features if name not in known_set]
    if unknown:
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise ModelError(model_id, f"input {unknown[0]!r} matches no transaction feature{more}")


def check_canary(model_id: str, actual: float, expected: float | None) -> None:
    if not math.isfinite(actual):
        raise ModelError(model_id, f"the canary score is not finite ({actual})")
    if expected is not None and abs(actual - expected) > CANARY_TOLERANCE:
        raise ModelError(
            model_id,
            f"canary score {actual:.8f} differs from the expected {expected:.8f} "
            f"by more than {CANARY_TOLERANCE}",
        )


NEUTRAL_VALUES: dict[str, Any] = {
    "float": 0.0,
    "double": 0.0,
    "int64": 0,
    "bool": False,
    "string": "",
}
"""Each input type's value in the canary a registration without one gets."""


def neutral_canary(signature: Signature) -> dict[str, Any]:
    """A fixed transaction made from the model's own inputs (zero, false, empty text), used when
    a registration names no canary; `shadow models register` gives a synthetic one instead."""
    return {name: NEUTRAL_VALUES[kind] for name, kind in signature.features.items()}


def with_canary_score(card: ModelCard, data: bytes, expected: float | None) -> ModelCard:
    """Score the canary with the real scorer; the card keeps what the model answered."""
    from shadow.scorer import OnnxScorer

    with tempfile.TemporaryDirectory(prefix="shadow-register-") as folder:
        path = Path(folder) / "model.onnx"
        path.write_bytes(data)
        actual = OnnxScorer(card, path).score_canary()
    check_canary(card.model_id, actual, expected)
    return card.model_copy(update={"canary_score": actual})


def threshold_of(model_id: str, model: onnx.ModelProto, given: float | None) -> float:
    """The decision threshold: the one given, else the model's ``threshold`` metadata property;
    refused when neither says, or when it is not a number in [0, 1]."""
    source = "--threshold"
    if given is None:
        meta = {p.key: p.value for p in model.metadata_props}
        if THRESHOLD_METADATA not in meta:
            raise ModelError(
                model_id,
                "no decision threshold: give --threshold, or set the ONNX metadata property "
                f"'{THRESHOLD_METADATA}' in the model",
            )
        source = f"metadata '{THRESHOLD_METADATA}'"
        try:
            given = float(meta[THRESHOLD_METADATA])
        except ValueError:
            raise ModelError(model_id, f"{source} is not a number") from None
    if not (math.isfinite(given) and 0.0 <= given <= 1.0):
        raise ModelError(model_id, f"the threshold ({source}) must be a number in [0, 1]")
    return float(given)


def check_names(name: str, version: str) -> None:
    for what, value in (("name", name), ("version", version)):
        if not _NAME.match(value):
            raise RegistryError(
                f"model {what} {value!r} must be 1-100 letters, digits, '.', '_' or '-'"
            )
