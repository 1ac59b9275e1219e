"""The envelope contract: a round trip keeps every field; every rejection reason is reachable."""

from __future__ import annotations

import math

import msgspec
import pytest

from shadow.envelope import (
    EVENT_TIME_RANGE,
    MAX_DEPTH,
    MAX_FEATURES,
    MAX_ID_CHARS,
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
    "too_deep": (_raw(pad="X").replace(b'"X"', b"[" * 10_000 + b"]" * 10_000), None),
    "too_long": (_raw(txn_id="t" * (MAX_ID_CHARS + 1)), None),
    "out_of_range": (_raw(features={"amount": 2**63}), None),
    "nested_feature": (_raw(features={"card": {"pan": "4111111111111111"}}), None),
    "feature_name": (_raw(features={"txn_id": "t-1"}), None),
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


def test_an_integer_beyond_int64_is_out_of_range() -> None:
    # Parquet, Arrow and the models hold nothing wider: refused, never an OverflowError later
    value = _raw().replace(b'"amount":12.5', b'"amount":' + b"9" * 400)
    with pytest.raises(EnvelopeError) as caught:
        decode(value)
    assert caught.value.reason == "out_of_range"
    assert decode(_raw(features={"n": 2**63 - 1, "m": -(2**63)})).features["n"] == 2**63 - 1


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1_000, 30_000])
@pytest.mark.parametrize("where", ["features", "pad"])
def test_deep_nesting_anywhere_is_too_deep_never_a_recursion_error(where: str, depth: int) -> None:
    nested = b"[" * depth + b"]" * depth
    value = _raw(**{where: "X"}).replace(b'"X"', nested)
    with pytest.raises(EnvelopeError) as caught:
        decode(value, max_bytes=1_000_000)
    assert caught.value.reason == "too_deep"


def test_brackets_inside_strings_are_not_nesting_and_escapes_are_linear() -> None:
    text = "[{" * 200 + '\\"]' * 50
    assert decode(_raw(features={"note": text})).features["note"] == text
    # a value full of escaped quotes once made a string-stripping regex take minutes
    hostile = b'{"a":"' + b'\\"[' * 20_000
    with pytest.raises(EnvelopeError) as caught:
        decode(hostile, max_bytes=1_000_000)
    assert caught.value.reason == "not_json"


def test_unknown_fields_may_nest_up_to_the_bound() -> None:
    nested = b"[" * (MAX_DEPTH - 1) + b"]" * (MAX_DEPTH - 1)
    assert decode(_raw(pad="X").replace(b'"X"', nested)).txn_id == "t-1"


@pytest.mark.parametrize(
    ("features", "reason"),
    [
        ({"a": [1, 2]}, "nested_feature"),
        ({"a": {}}, "nested_feature"),
        ({"": 1}, "feature_name"),
        ({"x" * 129: 1}, "too_long"),
        ({"event_time": 5}, "feature_name"),
        ({"date": "2026-01-01"}, "feature_name"),
        ({"note": "x" * 4097}, "too_long"),
        ({f"f{i}": i for i in range(MAX_FEATURES + 1)}, "too_long"),
    ],
)
def test_features_are_bounded_scalars_with_usable_names(features: dict, reason: str) -> None:
    with pytest.raises(EnvelopeError) as caught:
        decode(_raw(features=features), max_bytes=1_000_000)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    ("event_time", "accepted"),
    [
        (0, False),
        (-1, False),
        (1, True),
        (EVENT_TIME_RANGE[1] - 1, True),  # 9999-12-31T23:59:59.999Z
        (EVENT_TIME_RANGE[1], False),
        (10**15, False),  # the year 33658
        (2**70, False),
    ],
)
def test_event_time_must_lie_in_the_contract_range(event_time: int, accepted: bool) -> None:
    value = _raw(event_time=event_time)
    if accepted:
        assert decode(value).event_time == event_time
        return
    with pytest.raises(EnvelopeError) as caught:
        decode(value)
    assert caught.value.reason == "bad_event_time"


def test_the_caller_narrows_the_event_time_range() -> None:
    narrow = (1_700_000_000_000, 1_800_000_000_000)
    assert decode(_raw(event_time=1_767_225_600_000), event_times=narrow).txn_id == "t-1"
    with pytest.raises(EnvelopeError) as caught:
        decode(_raw(event_time=1_767_225_600), event_times=narrow)  # seconds, not ms
    assert caught.value.reason == "bad_event_time"
