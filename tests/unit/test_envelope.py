"""The envelope contract: a round trip keeps every field; every rejection reason is reachable."""

from __future__ import annotations

import math

import msgspec
import pytest

from shadow.envelope import (
    REASONS,
    Envelope,
    LiveScore,
    decode,
    encode,
    key_of,
    make_envelope,
)
from shadow.errors import EnvelopeError

LIVE = {"model_id": "fraud@7", "score": 0.25, "decision": "pass", "latency_ms": 3.5}


def _raw(**changes: object) -> bytes:
    record: dict[str, object] = {
        "schema": 1,
        "txn_id": "t-1",
        "event_time": 1_767_225_600_000,
        "live": dict(LIVE),
        "features": {"amount": 12.5},
    }
    for name, value in changes.items():
        if value is _DROP:
            record.pop(name)
        else:
            record[name] = value
    return msgspec.json.encode(record)


_DROP = object()

# one record per rejection reason, with the key it arrives under
CASES: dict[str, tuple[bytes | None, bytes | None]] = {
    "empty": (b"", None),
    "oversized": (b'{"schema": 1, "pad": "' + b"x" * 70_000 + b'"}', None),
    "not_json": (b"{not json", None),
    "not_object": (b"[1, 2, 3]", None),
    "schema_version": (_raw(schema=2), None),
    "missing_field": (_raw(live=_DROP), None),
    "wrong_type": (_raw(txn_id=42), None),
    "missing_txn_id": (_raw(txn_id=""), None),
    "bad_event_time": (_raw(event_time=0), None),
    # JSON has no infinity; a number beyond float range is how one arrives
    "non_finite": (_raw().replace(b'"score":0.25', b'"score":1e999'), None),
    "key_mismatch": (_raw(), b"t-2"),
}


def test_every_reason_has_a_case() -> None:
    assert set(CASES) == set(REASONS)


@pytest.mark.parametrize("reason", REASONS)
def test_each_bad_record_is_rejected_with_its_reason(reason: str) -> None:
    value, key = CASES[reason]
    with pytest.raises(EnvelopeError) as caught:
        decode(value, key=key)
    assert caught.value.reason == reason


def test_non_finite_feature_is_rejected() -> None:
    value = _raw().replace(b'"amount":12.5', b'"amount":-1e999')
    with pytest.raises(EnvelopeError) as caught:
        decode(value)
    assert caught.value.reason == "non_finite"


def test_round_trip_keeps_every_field() -> None:
    features = {"amount": 12.5, "mcc": "5411", "present": True, "count": 3, "email_age": None}
    live = LiveScore("fraud@7", 0.125, "alert", 2.75)
    envelope = make_envelope("t-9", features, live, event_time=1_767_225_600_123)
    value = encode(envelope)
    back = decode(value, key=key_of(envelope))
    assert back == envelope
    assert back.features == features
    assert isinstance(back.features["count"], int)
    assert key_of(envelope) == b"t-9"


def test_default_event_time_is_now_in_ms() -> None:
    import time

    before = time.time_ns() // 1_000_000
    envelope = make_envelope("t-1", {}, LiveScore("m@1", 0.5))
    assert before <= envelope.event_time <= time.time_ns() // 1_000_000


def test_encoded_bytes_are_the_documented_json() -> None:
    envelope = Envelope(1, "t-1", 5, LiveScore("m@1", 0.5, None, 1.0), {"a": 1})
    assert msgspec.json.decode(encode(envelope)) == {
        "schema": 1,
        "txn_id": "t-1",
        "event_time": 5,
        "live": {"model_id": "m@1", "score": 0.5, "decision": None, "latency_ms": 1.0},
        "features": {"a": 1},
    }
    assert math.isfinite(decode(encode(envelope)).live.score)


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        (b"NaN", "not_json"),
        (b"Infinity", "not_json"),
        (b"-Infinity", "not_json"),
        (b"1e999", "non_finite"),
        (b"-1e999", "non_finite"),
        (b"1.8e308", "non_finite"),
        (b"1" + b"0" * 400 + b".0", "non_finite"),
        (b"1" + b"0" * 5000, "wrong_type"),
    ],
)
def test_json_has_no_way_to_carry_a_non_finite_feature(number: bytes, reason: str) -> None:
    value = _raw().replace(b'"amount":12.5', b'"amount":' + number)
    with pytest.raises(EnvelopeError) as caught:
        decode(value)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    ("number", "expected"),
    [(b"1.7976931348623157e308", 1.7976931348623157e308), (b"1e-400", 0.0), (b"-0.0", -0.0)],
)
def test_extreme_finite_features_are_kept(number: bytes, expected: float) -> None:
    value = _raw().replace(b'"amount":12.5', b'"amount":' + number)
    assert decode(value).features["amount"] == expected


def test_a_huge_integer_feature_is_kept_exactly() -> None:
    # finite, beyond float range: the scorer fills it like a value of the wrong type
    value = _raw().replace(b'"amount":12.5', b'"amount":' + b"9" * 400)
    assert decode(value).features["amount"] == int("9" * 400)
