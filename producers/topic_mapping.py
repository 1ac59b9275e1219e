"""SourceMapping - where a live service's own records keep the envelope's fields.

A small YAML file (``source.mapping``)::

    txn_id: id                      # a dotted path: a.b is {"a": {"b": ...}}
    event_time: created_at          # optional: epoch ms or ISO-8601 text; unset: Kafka timestamp
    live:                           # the live answer (leave out when it comes from decisions:)
      model_id: scoring.model       # a path, or model_id_value: fraud@7 for a constant
      score: scoring.score
      decision: scoring.decision    # optional
      latency_ms: scoring.latency_ms  # optional (0 when unset)
    features:
      under: features               # every field of this object is a feature...
      exclude: [label, debug_trace]  # ...but these
      fields: {amount: payment.amount, country: merchant.country}  # and these, named
    decisions:                      # only with source.decisions_topic: its records' paths
      txn_id: txn
      live: {model_id: model, score: score, decision: outcome}

A path is a dotted string of object keys (``a.b.c``), or a YAML list of keys when a key holds a
dot itself (``[meta, "x.y"]``); there is no array indexing. txn_id may be text or an integer
(its decimal digits are what is hashed for sampling). A feature value must be a string, number,
boolean or null: a nested object under ``features.under`` refuses the record (exclude it, or map
its leaves under ``fields``). A record that does not fit raises EnvelopeError with a reason from
``shadow.envelope.REASONS`` and a detail that names the path, never a value.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from shadow.envelope import FeatureValue, LiveScore
from shadow.errors import EnvelopeError, MappingError

Keys = tuple[str, ...]
_MISSING: Any = object()


def _path(value: Any) -> Any:
    """A dotted string or a list of keys -> a tuple of non-empty keys."""
    if isinstance(value, str):
        value = value.split(".")
    if not isinstance(value, list | tuple) or not value:
        raise ValueError("expected a dotted path (a.b.c) or a list of keys")
    if not all(isinstance(key, str) and key for key in value):
        raise ValueError("a path's keys must be non-empty text (two dots, or one at an end?)")
    return tuple(value)


PathSpec = Annotated[Keys, BeforeValidator(_path)]


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LiveSpec(_Spec):
    model_id: PathSpec | None = None
    model_id_value: str | None = None
    score: PathSpec
    decision: PathSpec | None = None
    latency_ms: PathSpec | None = None

    @model_validator(mode="after")
    def _one_model_id(self) -> LiveSpec:
        if (self.model_id is None) == (self.model_id_value is None):
            raise ValueError("give exactly one of model_id (a path) and model_id_value (text)")
        return self


class FeatureSpec(_Spec):
    under: PathSpec | None = None
    exclude: tuple[str, ...] = ()
    fields: dict[str, PathSpec] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _something(self) -> FeatureSpec:
        if self.under is None and not self.fields:
            raise ValueError("give under (an object path), fields (name: path), or both")
        if self.exclude and self.under is None:
            raise ValueError("exclude needs under")
        return self


class DecisionSpec(_Spec):
    txn_id: PathSpec
    live: LiveSpec


class MappingSpec(_Spec):
    txn_id: PathSpec
    event_time: PathSpec | None = None
    live: LiveSpec | None = None
    features: FeatureSpec
    decisions: DecisionSpec | None = None


def load_mapping(path: Path, joined: bool) -> MappingSpec:
    """Read and check the YAML mapping; MappingError (one line naming the field) otherwise."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MappingError(str(path), "file", f"cannot read it ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise MappingError(str(path), "file", f"not valid YAML{where}") from None
    if not isinstance(data, dict):
        raise MappingError(str(path), "file", "expected a mapping (txn_id:, live:, features:)")
    try:
        spec = MappingSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "file"
        message = str(first["msg"]).removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown key (check its spelling)"
        raise MappingError(str(path), field, message) from None
    if joined and spec.decisions is None:
        raise MappingError(str(path), "decisions", "required with a decisions topic")
    if not joined and spec.live is None:
        raise MappingError(str(path), "live", "required (or give a decisions topic)")
    return spec


# -- reading a record ------------------------------------------------------------------------


def _getter(keys: Keys) -> Callable[[dict[str, Any]], Any]:
    """A function record -> the value at the path, or _MISSING."""
    if len(keys) == 1:
        key = keys[0]
        return lambda record: record.get(key, _MISSING)

    def get(record: dict[str, Any]) -> Any:
        value: Any = record
        for key in keys:
            if not isinstance(value, dict):
                return _MISSING
            value = value.get(key, _MISSING)
        return value

    return get


def _shown(keys: Keys) -> str:
    return ".".join(keys)


class _Field:
    """One mapped path: its getter and its name for error details."""

    __slots__ = ("get", "name")

    def __init__(self, keys: Keys) -> None:
        self.get = _getter(keys)
        self.name = _shown(keys)

    def required(self, record: dict[str, Any]) -> Any:
        value = self.get(record)
        if value is _MISSING:
            raise EnvelopeError("missing_field", f"no {self.name!r} in the record")
        return value


class LiveReader:
    """The live answer of a record (a scored transaction, or a decision)."""

    def __init__(self, spec: LiveSpec) -> None:
        self.model_id = _Field(spec.model_id) if spec.model_id else None
        self.model_id_value = spec.model_id_value
        self.score = _Field(spec.score)
        self.decision = _Field(spec.decision) if spec.decision else None
        self.latency = _Field(spec.latency_ms) if spec.latency_ms else None

    def __call__(self, record: dict[str, Any]) -> LiveScore:
        model_id = self.model_id_value
        if self.model_id is not None:
            model_id = _text(self.model_id, self.model_id.required(record))
        score = _number(self.score, self.score.required(record))
        decision = None
        if self.decision is not None:
            decision = self.decision.get(record)
            if decision is _MISSING or decision is None:
                decision = None
            else:
                decision = _text(self.decision, decision)
        latency = 0.0
        if self.latency is not None:
            latency = _number(self.latency, self.latency.required(record))
        return LiveScore(model_id or "", score, decision, latency)


class TxnIdReader:
    """The record's txn_id as text (an integer id as its decimal digits)."""

    def __init__(self, keys: Keys) -> None:
        self.field = _Field(keys)

    def __call__(self, record: dict[str, Any]) -> str:
        value = self.field.get(record)
        if value is _MISSING or value is None or value == "":
            raise EnvelopeError("missing_txn_id", f"no {self.field.name!r} in the record")
        if type(value) is str:
            return value
        if type(value) is int:
            return str(value)
        raise EnvelopeError("wrong_type", f"{self.field.name!r} is not text or an integer")


class FeatureReader:
    """The features of a record: every field under one object (less exclude), plus named ones.
    Values are passed on as they are; the redactor refuses nested ones."""

    def __init__(self, spec: FeatureSpec) -> None:
        self.under = _Field(spec.under) if spec.under else None
        self.exclude = frozenset(spec.exclude)
        self.fields = [(name, _Field(keys)) for name, keys in spec.fields.items()]

    def __call__(self, record: dict[str, Any]) -> dict[str, FeatureValue]:
        features: dict[str, Any] = {}
        if self.under is not None:
            source = self.under.required(record)
            if type(source) is not dict:
                raise EnvelopeError("wrong_type", f"{self.under.name!r} is not an object")
            exclude = self.exclude
            features = (
                {k: v for k, v in source.items() if k not in exclude} if exclude else {**source}
            )
        for name, field in self.fields:
            value = field.get(record)
            features[name] = None if value is _MISSING else value
        return features


class EventTimeReader:
    """Epoch ms from a number (ms) or ISO-8601 text (UTC when it has no offset); the Kafka
    timestamp when no path is mapped."""

    def __init__(self, keys: Keys | None) -> None:
        self.field = _Field(keys) if keys else None

    def __call__(self, record: dict[str, Any], kafka_ms: int) -> int:
        if self.field is None:
            return kafka_ms
        value = self.field.required(record)
        kind = type(value)
        if kind is int or (kind is float and math.isfinite(value)):
            when = int(value)
        elif kind is str:
            when = _iso_ms(self.field, value)
        else:
            raise EnvelopeError("bad_event_time", f"{self.field.name!r} is not a time")
        if when <= 0:
            raise EnvelopeError("bad_event_time", f"{self.field.name!r} is not epoch ms")
        return when


def _iso_ms(field: _Field, text: str) -> int:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise EnvelopeError("bad_event_time", f"{field.name!r} is not ISO-8601 text") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


def _text(field: _Field, value: Any) -> str:
    if type(value) is not str:
        raise EnvelopeError("wrong_type", f"{field.name!r} is not text")
    return value


def _number(field: _Field, value: Any) -> float:
    kind = type(value)
    if kind is float:
        if not math.isfinite(value):
            raise EnvelopeError("non_finite", f"{field.name!r} is not finite")
        return value
    if kind is int:
        return float(value)
    raise EnvelopeError("wrong_type", f"{field.name!r} is not a number")
