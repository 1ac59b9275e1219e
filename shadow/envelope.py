"""Envelope - the two topic records (transaction envelope, prediction record) and their bytes.

This module is the one place Kafka record values are made and read.

The transaction envelope (the tap's topic), schema 1, as JSON so a live service in any language
can produce it::

    {"schema": 1, "txn_id": "t-1", "event_time": 1767225600000,
     "live": {"model_id": "fraud@7", "score": 0.12, "decision": "pass", "latency_ms": 3.1},
     "features": {"amount": 12.5, "merchant_category": "5411", "card_present": true}}

Kafka key = txn_id as UTF-8; header ``shadow-schema`` = b"1".

The prediction record (``worker.predictions_topic``, read by the monitor), one per transaction::

    {"schema": 1, "txn_id": "t-1", "event_time": 1767225600000,
     "live": {"model_id": "fraud@7", "score": 0.12, "decision": "pass", "latency_ms": 3.1},
     "candidates": [{"model_id": "fraud@8", "score": 0.10, "error": null, "latency_us": 41.5}]}

Kafka key = txn_id, Kafka timestamp = event_time. A candidate's score is null when it failed
(error says why) or when it was not finite (error null: JSON has no NaN).

Bounds (hostile input stops here, before anything is scored or stored): the value is at most
``max_bytes``; nesting at most MAX_DEPTH levels anywhere (the contract itself needs two); feature
values are scalars (``nested_feature`` otherwise); integers fit in int64, floats are finite;
strings, feature names and the number of features have the lengths below (``too_long``);
feature names are not the features dataset's own columns (``feature_name``); event_time lies in
the range the caller gives (the worker's ``worker.event_time_min`` .. ``event_time_max``), at
most the contract's EVENT_TIME_RANGE (``bad_event_time``).
"""

from __future__ import annotations

import math
import operator
import sys
import time
from collections.abc import Iterable, Sequence
from itertools import repeat
from typing import Annotated, Any, NamedTuple, cast

import msgspec

from shadow.errors import EnvelopeError

SCHEMA_VERSION = 1
SCHEMA_HEADER = "shadow-schema"
HEADERS = [(SCHEMA_HEADER, b"1")]
DEFAULT_MAX_BYTES = 64_000

MAX_DEPTH = 64
"""Deepest nesting of objects and arrays a value may have (unknown fields included)."""
MAX_ID_CHARS = 256
"""Longest txn_id, live.model_id and live.decision."""
MAX_FEATURE_NAME_CHARS = 128
MAX_FEATURE_CHARS = 4096
"""Longest string feature value."""
MAX_FEATURES = 512
"""Most features one record may carry."""
RESERVED_FEATURES = frozenset({"txn_id", "event_time", "date"})
"""The features dataset's own columns (and its date= partition): no feature may be named so."""
EVENT_TIME_RANGE = (1, 253_402_300_800_000)
"""The contract's widest event_time range, epoch ms [start, end): after 1970-01-01, before
the year 10000 (what every datetime type and date= partition can hold)."""

FeatureValue = float | int | str | bool | None

# JSON has no NaN or infinity and msgspec refuses numbers beyond float range ("Number out of
# range"), so a decoded feature is finite already; the bounds restate it in the decoder's own C
# loop, at no cost per feature, instead of a Python pass over every feature of every record.
# Integers are bounded to int64 the same way (Parquet and the models hold nothing wider).
_FINITE = msgspec.Meta(le=sys.float_info.max, ge=-sys.float_info.max)
_INT64 = msgspec.Meta(ge=-(2**63), le=2**63 - 1)
_DecodedFeature = (
    Annotated[float, _FINITE]
    | Annotated[int, _INT64]
    | Annotated[str, msgspec.Meta(max_length=MAX_FEATURE_CHARS)]
    | bool
    | None
)
_FeatureName = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_FEATURE_NAME_CHARS)]
_StrictFeatures = Annotated[
    dict[_FeatureName, _DecodedFeature], msgspec.Meta(max_length=MAX_FEATURES)
]
# The names' bounds cost the decoder 2.5 us a record (a bounded key is never taken from its
# cache of keys, so 31 names are 31 new strings): the decoder runs without them and the names
# are measured after it, once per distinct name of a batch (decode_many) or per record
# (decode); a record whose names break them is decoded again with every bound in the types
# (_StrictEnvelope), so its error is exactly the one those bounds give.
_Features = Annotated[dict[str, _DecodedFeature], msgspec.Meta(max_length=MAX_FEATURES)]
_Id = Annotated[str, msgspec.Meta(max_length=MAX_ID_CHARS)]

# Dead-letter headers: why a record was refused and where it came from.
DLQ_REASON = "shadow-dlq-reason"
DLQ_DETAIL = "shadow-dlq-detail"
DLQ_TOPIC = "shadow-source-topic"
DLQ_PARTITION = "shadow-source-partition"
DLQ_OFFSET = "shadow-source-offset"
DLQ_SCRUBBED = "shadow-dlq-scrubbed"
"""Present when card numbers were masked in the dead letter's value: how many."""
DLQ_ORIGINAL_BYTES = "shadow-dlq-original-bytes"
"""Set when the value was truncated to fit the DLQ: the original value's size."""

# Every reason decode() can give, for the DLQ and for metrics labels.
REASONS = (
    "empty",
    "oversized",
    "not_json",
    "not_object",
    "schema_version",
    "missing_field",
    "wrong_type",
    "missing_txn_id",
    "bad_event_time",
    "non_finite",
    "key_mismatch",
    "too_deep",
    "too_long",
    "out_of_range",
    "nested_feature",
    "feature_name",
)

# The worker's own refusals, given after decode() (which knows no model and no store):
FEATURE_TYPE = "feature_type"
"""A feature whose type a loaded model cannot take without loss (consumers.feature_check)."""
UNSTORABLE = "unstorable"
"""A record whose rows could not be built (consumers.chunk_rows): kept in the DLQ, not lost."""


class LiveScore(msgspec.Struct, frozen=True, gc=False):
    """What the production model answered for this transaction."""

    model_id: _Id
    score: float
    decision: _Id | None = None
    latency_ms: float = 0.0


class Envelope(msgspec.Struct, frozen=True, gc=False):
    """One sampled transaction: its id, time, live answer and raw features.

    Untracked by the cyclic garbage collector (``gc=False``): it holds only scalars and a dict
    of scalars, so it cannot be part of a cycle, and a worker holding tens of thousands of
    envelopes does not make every collection walk them (a third of the decode time).
    """

    schema: int
    txn_id: _Id
    event_time: int
    live: LiveScore
    features: _Features


class _StrictEnvelope(msgspec.Struct, frozen=True, gc=False):
    """Envelope with the feature names' bounds in its type: it decodes only to name an error."""

    schema: int
    txn_id: _Id
    event_time: int
    live: LiveScore
    features: _StrictFeatures


class _SchemaProbe(msgspec.Struct):
    schema: Any = None


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Envelope)
_strict = msgspec.json.Decoder(_StrictEnvelope)
_probe = msgspec.json.Decoder(_SchemaProbe)


def make_envelope(
    txn_id: str,
    features: dict[str, FeatureValue],
    live: LiveScore,
    event_time: int | None = None,
) -> Envelope:
    """Build an envelope; event_time defaults to now, in epoch milliseconds."""
    when = event_time if event_time is not None else time.time_ns() // 1_000_000
    return Envelope(SCHEMA_VERSION, txn_id, when, live, features)


def encode(envelope: Envelope) -> bytes:
    """Envelope -> JSON bytes (the Kafka value)."""
    return _encoder.encode(envelope)


def decode(
    value: bytes | None,
    key: bytes | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    event_times: tuple[int, int] = EVENT_TIME_RANGE,
) -> Envelope:
    """Kafka value (and key) -> a validated Envelope, or EnvelopeError (reason in REASONS).

    ``event_times`` is the accepted event_time range, epoch ms [start, end)."""
    if not value:
        raise EnvelopeError("empty", "the record has no value")
    if len(value) > max_bytes:
        raise EnvelopeError("oversized", f"{len(value)} bytes, the limit is {max_bytes}")
    _check_depth(value)
    try:
        envelope = _decoder.decode(value)
    except (msgspec.DecodeError, RecursionError):
        raise _refusal(value) from None
    if not _usable_names(envelope.features):
        raise _refusal(value)
    _check(envelope, key, event_times)
    return envelope


def _refusal(value: bytes) -> EnvelopeError:
    """Why the decoder with every bound in its types (feature names included) refuses a value
    (a value the plain decoder refuses, or whose names break their bounds)."""
    try:
        _strict.decode(value)
    except msgspec.ValidationError as exc:
        return _classify(value, str(exc))
    except msgspec.DecodeError as exc:
        return EnvelopeError("not_json", str(exc))
    except RecursionError:  # a guard: _check_depth already refuses what goes this deep
        return EnvelopeError("too_deep", f"nested deeper than {MAX_DEPTH} levels")
    return EnvelopeError("wrong_type", "the value does not decode as an envelope")


def _usable_names(names: Iterable[str]) -> bool:
    """Every feature name is 1..MAX_FEATURE_NAME_CHARS characters long (the type's bound)."""
    lengths = list(map(len, names))
    return not lengths or (min(lengths) >= 1 and max(lengths) <= MAX_FEATURE_NAME_CHARS)


class Decoded(NamedTuple):
    """decode_many's answer: per record, in order, its Envelope or the EnvelopeError that
    decode() raises for it; and the indexes of the refused ones."""

    items: list[Envelope | EnvelopeError]
    refused: list[int]


_SCHEMA = operator.attrgetter("schema")
_TXN_ID = operator.attrgetter("txn_id")
_EVENT_TIME = operator.attrgetter("event_time")
_FEATURES = operator.attrgetter("features")
_LIVE_SCORE = operator.attrgetter("live.score")
_LIVE_LATENCY = operator.attrgetter("live.latency_ms")


def decode_many(
    values: Sequence[bytes | None],
    keys: Sequence[bytes | None],
    max_bytes: int = DEFAULT_MAX_BYTES,
    event_times: tuple[int, int] = EVENT_TIME_RANGE,
) -> Decoded:
    """decode() of every record, with the very same answers, at a batch's cost: the bounds are
    checked over the batch in C loops (lengths, bracket counts, the distinct feature names,
    the event_time range, the live figures, the keys); a record any of them doubts is
    decoded again alone by decode(), which gives its exact error."""
    envelopes = _decode_plain(values, max_bytes)
    if envelopes is None:
        items = [_decoded(v, k, max_bytes, event_times) for v, k in zip(values, keys, strict=True)]
    else:
        items = list(envelopes)
        for i in _doubtful(envelopes, keys, event_times):
            items[i] = _decoded(values[i], keys[i], max_bytes, event_times)
    refused = [i for i, item in enumerate(items) if type(item) is not Envelope]
    return Decoded(items, refused)


def _decoded(
    value: bytes | None, key: bytes | None, max_bytes: int, event_times: tuple[int, int]
) -> Envelope | EnvelopeError:
    try:
        return decode(value, key, max_bytes, event_times)
    except EnvelopeError as exc:
        return exc


def _decode_plain(values: Sequence[bytes | None], max_bytes: int) -> list[Envelope] | None:
    """Every value through the decoder, or None when one is empty, oversized, holds more
    brackets than MAX_DEPTH (it may nest too deep) or is refused: then each is looked at."""
    # typed as all bytes: a None among them (a tombstone) makes len() raise TypeError, caught
    # below, and then every record is looked at alone
    present = cast("Sequence[bytes]", values)
    try:
        lengths = list(map(len, present))
        if not present or min(lengths) == 0 or max(lengths) > max_bytes:
            return None
        opens = map(bytes.count, present, repeat(b"["))
        braces = map(bytes.count, present, repeat(b"{"))
        if max(map(operator.add, opens, braces)) > MAX_DEPTH:
            return None
        return list(map(_decoder.decode, present))
    except (TypeError, msgspec.DecodeError, RecursionError):
        return None


def _doubtful(
    envelopes: list[Envelope], keys: Sequence[bytes | None], event_times: tuple[int, int]
) -> Iterable[int]:
    """Indexes of the decoded records that _check or the names' bounds might refuse: all of
    them when a figure of the batch is off, else those whose key is not their txn_id."""
    txn_ids = list(map(_TXN_ID, envelopes))
    times = list(map(_EVENT_TIME, envelopes))
    names = set().union(*map(_FEATURES, envelopes))
    live = sum(map(_LIVE_SCORE, envelopes)) + sum(map(_LIVE_LATENCY, envelopes))
    plain = (
        set(map(_SCHEMA, envelopes)) == {SCHEMA_VERSION}
        and "" not in txn_ids
        and event_times[0] <= min(times)
        and max(times) < event_times[1]
        and math.isfinite(live)  # a sum that overflows only sends the batch the long way
        and not names & RESERVED_FEATURES
        and _usable_names(names)
    )
    if not plain:
        return range(len(envelopes))
    if list(keys) == list(map(str.encode, txn_ids)):
        return ()
    return [
        i
        for i, (k, t) in enumerate(zip(keys, txn_ids, strict=True))
        if k is not None and k != t.encode()
    ]


def _check_depth(value: bytes) -> None:
    """Refuse nesting deeper than MAX_DEPTH before a recursive decoder meets it. A value with
    fewer brackets than that cannot be that deep (two byte counts: nothing more for a normal
    record); others are measured, outside strings, in one vectorised pass."""
    if value.count(b"[") + value.count(b"{") <= MAX_DEPTH:
        return
    depth = _depth(value)
    if depth > MAX_DEPTH:
        raise EnvelopeError("too_deep", f"nested {depth} levels deep, the limit is {MAX_DEPTH}")


def _depth(value: bytes) -> int:
    """The deepest bracket nesting outside JSON strings, in linear time (a regex stripping
    strings backtracks quadratically on a value full of escaped quotes)."""
    import numpy as np

    codes = np.frombuffer(value, dtype=np.uint8)
    index = np.arange(codes.size)
    slash = codes == ord("\\")
    # the backslashes right before each byte: a quote after an odd number of them is escaped
    last_plain = np.maximum.accumulate(np.where(slash, -1, index))
    run_before = np.concatenate(([0], index[:-1] - last_plain[:-1]))
    quotes = (codes == ord('"')) & (run_before % 2 == 0)
    outside = np.cumsum(quotes) % 2 == 0
    opens = ((codes == ord("[")) | (codes == ord("{"))) & outside
    closes = ((codes == ord("]")) | (codes == ord("}"))) & outside
    steps = opens.astype(np.int32) - closes
    return int(np.cumsum(steps).max()) if steps.size else 0


def _classify(value: bytes, message: str) -> EnvelopeError:
    try:
        probe = _probe.decode(value)
    except msgspec.DecodeError:
        return EnvelopeError("not_object", "the value is JSON but not an object")
    except RecursionError:
        return EnvelopeError("too_deep", f"nested deeper than {MAX_DEPTH} levels")
    if probe.schema != SCHEMA_VERSION:
        return EnvelopeError(
            "schema_version", f"schema {probe.schema!r}, expected {SCHEMA_VERSION}"
        )
    return EnvelopeError(_reason_of(message), message)


def _reason_of(message: str) -> str:
    """The reason of a msgspec validation message (it names the path, never the value)."""
    if "missing required field" in message:
        return "missing_field"
    if "Number out of range" in message or "Expected `float` <=" in message:
        return "non_finite"  # e.g. 1e999: JSON's only way to say inf
    if "Expected `float` >=" in message:
        return "non_finite"
    if "Expected `int` <=" in message or "Expected `int` >=" in message:
        return "out_of_range"
    if "of length >=" in message and "`key` in `$.features`" in message:
        return "feature_name"
    if "of length <=" in message:
        return "too_long"
    if "$.features[" in message and ("got `object`" in message or "got `array`" in message):
        return "nested_feature"
    return "wrong_type"


def _check(envelope: Envelope, key: bytes | None, event_times: tuple[int, int]) -> None:
    if envelope.schema != SCHEMA_VERSION:
        raise EnvelopeError(
            "schema_version", f"schema {envelope.schema}, expected {SCHEMA_VERSION}"
        )
    if not envelope.txn_id:
        raise EnvelopeError("missing_txn_id", "txn_id is empty")
    start, end = event_times
    if not start <= envelope.event_time < end:
        raise EnvelopeError(
            "bad_event_time",
            f"event_time {envelope.event_time} is outside the accepted epoch-ms range "
            f"[{start}, {end})",
        )
    if not math.isfinite(envelope.live.score) or not math.isfinite(envelope.live.latency_ms):
        raise EnvelopeError("non_finite", "live.score and live.latency_ms must be finite")
    if key is not None and key != envelope.txn_id.encode():
        raise EnvelopeError("key_mismatch", "the Kafka key is not the envelope's txn_id")
    features = envelope.features
    if "txn_id" in features or "event_time" in features or "date" in features:
        raise EnvelopeError(
            "feature_name",
            "a feature is named txn_id, event_time or date: those are the features dataset's "
            "own columns; rename it in the service",
        )


def key_of(envelope: Envelope) -> bytes:
    """The Kafka key of an envelope: txn_id as UTF-8."""
    return envelope.txn_id.encode()


# -- the prediction record (worker.predictions_topic -> monitor) ------------------------------

PREDICTION_RECORD_VERSION = 1


class CandidateScore(msgspec.Struct, frozen=True):
    """One candidate's answer for one transaction."""

    model_id: str
    score: float | None
    error: str | None = None
    latency_us: float = 0.0


class PredictionRecord(msgspec.Struct, frozen=True):
    """One scored transaction: the live answer and every candidate's, for the monitor."""

    schema: int
    txn_id: str
    event_time: int
    live: LiveScore
    candidates: list[CandidateScore]


_prediction_decoder = msgspec.json.Decoder(PredictionRecord)


def encode_prediction(record: PredictionRecord) -> bytes:
    """PredictionRecord -> JSON bytes (the value on worker.predictions_topic)."""
    return _encoder.encode(record)


def decode_prediction(value: bytes | None) -> PredictionRecord:
    """Value on worker.predictions_topic -> PredictionRecord, or EnvelopeError."""
    if not value:
        raise EnvelopeError("empty", "the record has no value")
    try:
        record = _prediction_decoder.decode(value)
    except msgspec.ValidationError as exc:
        raise EnvelopeError("wrong_type", str(exc)) from None
    except msgspec.DecodeError as exc:
        raise EnvelopeError("not_json", str(exc)) from None
    if record.schema != PREDICTION_RECORD_VERSION:
        raise EnvelopeError(
            "schema_version", f"schema {record.schema}, expected {PREDICTION_RECORD_VERSION}"
        )
    return record


# -- a live service's own records (shadow tap from-topic) ------------------------------------

_any_decoder = msgspec.json.Decoder()


def decode_source(value: bytes | None, max_bytes: int) -> dict[str, Any]:
    """A record of a live service's own topic (its JSON, its schema) -> a dict, or
    EnvelopeError (empty, oversized, not_json, not_object); the mapping takes it from there."""
    if not value:
        raise EnvelopeError("empty", "the record has no value")
    if len(value) > max_bytes:
        raise EnvelopeError("oversized", f"{len(value)} bytes, the limit is {max_bytes}")
    try:
        record = _any_decoder.decode(value)
    except msgspec.DecodeError as exc:
        raise EnvelopeError("not_json", str(exc)) from None
    if not isinstance(record, dict):
        raise EnvelopeError("not_object", "the value is JSON but not an object")
    return record


def dead_letter_headers(
    error: EnvelopeError, topic: str, partition: int, offset: int, detail_max: int = 300
) -> list[tuple[str, bytes]]:
    """Headers of a dead letter: why it was refused and where it came from."""
    return [
        (DLQ_REASON, error.reason.encode()),
        (DLQ_DETAIL, error.detail[:detail_max].encode("utf-8", "replace")),
        (DLQ_TOPIC, topic.encode()),
        (DLQ_PARTITION, str(partition).encode()),
        (DLQ_OFFSET, str(offset).encode()),
    ]


# -- the join's waiting halves (shadow tap from-topic with a decisions topic) ----------------


class JoinHalf(msgspec.Struct, frozen=True, gc=False):
    """A request waiting for its live decision, or a decision waiting for its request: the
    value of the join's changelog (key ``<kind>:<txn_id>``), so a restart finds it again.
    A request holds its event time and its features, already redacted; a decision its live
    score. ``timestamp`` is the source record's Kafka timestamp (the join window's clock);
    topic/partition/offset say where it came from, for its dead letter."""

    kind: str
    txn_id: str
    timestamp: int
    topic: str
    partition: int
    offset: int
    event_time: int = 0
    features: dict[str, _DecodedFeature] | None = None
    live: LiveScore | None = None
    newest: dict[str, int] | None = None
    """Only in the join's clock record (kind ``clock``): the newest Kafka timestamp read per
    ``<kind>:<partition>``."""


_half_decoder = msgspec.json.Decoder(JoinHalf)


def encode_join_half(half: JoinHalf) -> bytes:
    """JoinHalf -> JSON bytes (a changelog value)."""
    return _encoder.encode(half)


def decode_join_half(value: bytes) -> JoinHalf:
    """Changelog value -> JoinHalf, or EnvelopeError."""
    try:
        return _half_decoder.decode(value)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        raise EnvelopeError("wrong_type", str(exc)) from None
