"""FeatureCheck - each record's features against the input types of the loaded models.

The rule (README "Feature types"): a feature a loaded model takes must be a value its card's
type holds without loss, or null/absent (a gap, filled as always). The scorer converts what is
lossless on its own (an integer for a string input -> "5411", a bool or an integer for a float
input -> 1.0, an integral float for an int64 input, 0/1 for a bool input); any other value sends
the record to the DLQ as ``feature_type``, before it is scored or stored. Features no model
takes are never refused: the features dataset stores them as they came (shadow.feature_columns).

The common case costs one pass per feature over the batch (the set of Python types present);
values are looked at one by one only in a column that holds an unexpected type.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from shadow.envelope import FEATURE_TYPE
from shadow.errors import EnvelopeError

if TYPE_CHECKING:
    from shadow.scorer import FeatureFrame

FLOAT32_MAX = float(np.finfo(np.float32).max)
INT64_RANGE = (-(2**63), 2**63 - 1)

_NONE = type(None)
# the Python types each card type takes as they are, without a look at the values
_PLAIN: dict[str, frozenset[type]] = {
    "float": frozenset({float, int, bool, _NONE}),
    "double": frozenset({float, int, bool, _NONE}),
    "int64": frozenset({int, bool, _NONE}),
    "string": frozenset({str, int, _NONE}),
    "bool": frozenset({bool, _NONE}),
}


def wanted_types(cards: list[Mapping[str, str]]) -> dict[str, frozenset[str]]:
    """Feature name -> the card types the loaded models take it as."""
    wanted: dict[str, set[str]] = {}
    for features in cards:
        for name, kind in features.items():
            wanted.setdefault(name, set()).add(kind)
    return {name: frozenset(kinds) for name, kinds in wanted.items()}


def check_features(
    frame: FeatureFrame, wanted: Mapping[str, frozenset[str]]
) -> dict[int, EnvelopeError]:
    """The rows (indexes into the frame) holding a feature value a model cannot take."""
    refused: dict[int, EnvelopeError] = {}
    frame.spread(wanted)  # every wanted feature's values in one pass over the rows
    floats = {name: "float" for name, kinds in wanted.items() if "float" in kinds}
    if floats:
        frame.columns(floats)  # gathered in one pass; the models reuse these very columns
    for name, kinds in wanted.items():
        values = frame.values(name)
        present = set(map(type, values))
        for kind in kinds:
            if not present <= _PLAIN.get(kind, frozenset()):
                _look_at_each(name, kind, values, refused)
            elif kind == "float" and float in present:
                _beyond_float32(name, frame, values, refused)
    return refused


def _look_at_each(name: str, kind: str, values: Sequence[Any], refused: dict) -> None:
    for row, value in enumerate(values):
        if row not in refused and not takes(kind, value):
            refused[row] = _error(name, kind, value)


def _beyond_float32(name: str, frame: FeatureFrame, values: Sequence[Any], refused: dict) -> None:
    """A float beyond float32's range would reach the model as infinity. The frame's float32
    column is the one the models get: an infinity in it came from such a value (JSON carries
    no infinity), so the values are looked at only then."""
    column, _ = frame.column(name, "float")
    if np.isinf(column).any():
        _look_at_each(name, "float", values, refused)


def takes(kind: str, value: Any) -> bool:
    """Whether a model input of this card type holds the value without loss (None: a gap)."""
    if value is None:
        return True
    kinds = type(value)
    if kind in ("float", "double"):
        if kinds is float:
            return kind == "double" or abs(value) <= FLOAT32_MAX
        return kinds in (int, bool)
    if kind == "int64":
        if kinds is float:
            return value.is_integer() and INT64_RANGE[0] <= value <= INT64_RANGE[1]
        return kinds in (int, bool)
    if kind == "string":
        return kinds in (str, int)
    if kind == "bool":
        return kinds is bool or (kinds in (int, float) and value in (0, 1))
    return False


def _error(name: str, kind: str, value: Any) -> EnvelopeError:
    shown = name if len(name) <= 64 else name[:61] + "..."
    what = type(value).__name__.replace("str", "string").replace("int", "integer")
    return EnvelopeError(
        FEATURE_TYPE,
        f"feature {shown!r} is a {what} that a loaded model's {kind} input cannot hold "
        "without loss",
    )
