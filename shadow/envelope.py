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
"""

from __future__ import annotations

import math
import sys
import time
from typing import Annotated, Any

import msgspec

from shadow.errors import EnvelopeError

SCHEMA_VERSION = 1
SCHEMA_HEADER = "shadow-schema"
HEADERS = [(SCHEMA_HEADER, b"1")]
DEFAULT_MAX_BYTES = 64_000

FeatureValue = float | int | str | bool | None

# JSON has no NaN or infinity and msgspec refuses numbers beyond float range ("Number out of
# range"), so a decoded feature is finite already; the bounds restate it in the decoder's own C
# loop, at no cost per feature, instead of a Python pass over every feature of every record.
_FINITE = msgspec.Meta(le=sys.float_info.max, ge=-sys.float_info.max)
_DecodedFeature = Annotated[float, _FINITE] | int | str | bool | None

# Dead-letter headers: why a record was refused and where it came from.
DLQ_REASON = "shadow-dlq-reason"
DLQ_DETAIL = "shadow-dlq-detail"
DLQ_TOPIC = "shadow-source-topic"
DLQ_PARTITION = "shadow-source-partition"
DLQ_OFFSET = "shadow-source-offset"
DLQ_SCRUBBED = "shadow-dlq-scrubbed"
"""Present when card numbers were masked in the dead letter's value: how many."""

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
)


class LiveScore(msgspec.Struct, frozen=True, gc=False):
    """What the production model answered for this transaction."""

    model_id: str
    score: float
    decision: str | None = None
    latency_ms: float = 0.0


class Envelope(msgspec.Struct, frozen=True, gc=False):
    """One sampled transaction: its id, time, live answer and raw features.

    Untracked by the cyclic garbage collector (``gc=False``): it holds only scalars and a dict
    of scalars, so it cannot be part of a cycle, and a worker holding tens of thousands of
    envelopes does not make every collection walk them (a third of the decode time).
    """

    schema: int
    txn_id: str
    event_time: int
    live: LiveScore
    features: dict[str, _DecodedFeature]


class _SchemaProbe(msgspec.Struct):
    schema: Any = None


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Envelope)
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
    value: bytes | None, key: bytes | None = None, max_bytes: int = DEFAULT_MAX_BYTES
) -> Envelope:
    """Kafka value (and key) -> a validated Envelope, or EnvelopeError (reason in REASONS)."""
    if not value:
        raise EnvelopeError("empty", "the record has no value")
    if len(value) > max_bytes:
        raise EnvelopeError("oversized", f"{len(value)} bytes, the limit is {max_bytes}")
    try:
        envelope = _decoder.decode(value)
    except msgspec.ValidationError as exc:
        raise _classify(value, str(exc)) from None
    except msgspec.DecodeError as exc:
        raise EnvelopeError("not_json", str(exc)) from None
    _check(envelope, key)
    return envelope


def _classify(value: bytes, message: str) -> EnvelopeError:
    try:
        probe = _probe.decode(value)
    except msgspec.DecodeError:
        return EnvelopeError("not_object", "the value is JSON but not an object")
    if probe.schema != SCHEMA_VERSION:
        return EnvelopeError(
            "schema_version", f"schema {probe.schema!r}, expected {SCHEMA_VERSION}"
        )
    if "missing required field" in message:
        return EnvelopeError("missing_field", message)
    if "Number out of range" in message or "Expected `float` <=" in message:
        return EnvelopeError("non_finite", message)  # e.g. 1e999: JSON's only way to say inf
    return EnvelopeError("wrong_type", message)


def _check(envelope: Envelope, key: bytes | None) -> None:
    if envelope.schema != SCHEMA_VERSION:
        raise EnvelopeError(
            "schema_version", f"schema {envelope.schema}, expected {SCHEMA_VERSION}"
        )
    if not envelope.txn_id:
        raise EnvelopeError("missing_txn_id", "txn_id is empty")
    if envelope.event_time <= 0:
        raise EnvelopeError("bad_event_time", f"event_time {envelope.event_time} is not epoch ms")
    if not math.isfinite(envelope.live.score) or not math.isfinite(envelope.live.latency_ms):
        raise EnvelopeError("non_finite", "live.score and live.latency_ms must be finite")
    if key is not None and key != envelope.txn_id.encode():
        raise EnvelopeError("key_mismatch", "the Kafka key is not the envelope's txn_id")


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
