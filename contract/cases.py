"""The inputs of the contract's test vectors (contract/generate.py turns them into v1/*.json)."""

from __future__ import annotations

import json
from typing import Any

SAMPLING_IDS = [
    "t-1",
    "t-2",
    "t-3",
    "txn-000003",
    "",
    "0",
    "9223372036854775807",
    "tx-é€",
    "支付-42",
    "a" * 64,
    "550e8400-e29b-41d4-a716-446655440000",
    "TXN 7",
]
SAMPLING_SALTS = ["shadow", "", "salt-2026"]
SAMPLING_RATES = [0.0, 0.01, 1 / 3, 0.5, 1.0]

LIVE = ("fraud@7", 0.125, "pass", 3.5)

ENCODE_CASES: list[tuple[str, str, int, tuple[Any, ...], dict[str, Any]]] = [
    (
        "typical",
        "t-2",
        1767225600000,
        LIVE,
        {"amount": 12.5, "merchant_category": "5411", "card_present": True, "country": "DE"},
    ),
    ("no decision, no latency", "t-3", 1767225600001, ("fraud@7", 0.9, None, 0.0), {"a": 1}),
    ("no features", "t-4", 1767225600002, LIVE, {}),
    ("null and bool features", "t-5", 1767225600003, LIVE, {"x": None, "y": False}),
    (
        "numbers",
        "t-6",
        1767225600004,
        ("m@1", 1e-07, "review", 0.001),
        {"small": 1e-7, "big": 1e21, "neg_zero": -0.0, "int": 9007199254740993, "third": 1 / 3},
    ),
    (
        "text needing escapes",
        'q"uote',
        1767225600005,
        LIVE,
        {"note": 'line\nbreak "quoted" back\\slash\ttab', "unicode": "é€支付", "ctrl": "\u0001"},
    ),
]


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


_GOOD = {
    "schema": 1,
    "txn_id": "t-1",
    "event_time": 1767225600000,
    "live": {"model_id": "fraud@7", "score": 0.12, "decision": "pass", "latency_ms": 3.1},
    "features": {"amount": 12.5, "merchant_category": "5411", "card_present": True},
}


def _with(**changes: Any) -> bytes:
    return _json({**_GOOD, **changes})


def _live(**changes: Any) -> dict[str, Any]:
    return {**_GOOD["live"], **changes}


def _without(name: str) -> bytes:
    return _json({k: v for k, v in _GOOD.items() if k != name})


MAX = 64_000
DECODE_CASES: list[tuple[str, bytes | None, bytes, int]] = [
    ("accepted", b"t-1", _json(_GOOD), MAX),
    ("accepted without a key", None, _json(_GOOD), MAX),
    ("accepted: unknown fields are ignored", b"t-1", _with(extra={"a": 1}), MAX),
    (
        "accepted: decision and latency_ms may be absent",
        b"t-1",
        _with(live={"model_id": "fraud@7", "score": 0.5}),
        MAX,
    ),
    (
        "accepted: spaces and key order do not matter",
        b"t-1",
        json.dumps(dict(reversed(list(_GOOD.items()))), indent=2).encode(),
        MAX,
    ),
    ("accepted: an integer score", b"t-1", _with(live=_live(score=1)), MAX),
    ("empty", b"t-1", b"", MAX),
    ("oversized", b"t-1", _json(_GOOD), 64),
    ("not_json", b"t-1", b'{"schema": 1, "txn_id": ', MAX),
    ("not_json: not UTF-8", b"t-1", b'{"schema":1,"txn_id":"\xff"}', MAX),
    ("not_object", b"t-1", b"[1, 2, 3]", MAX),
    ("schema_version", b"t-1", _with(schema=2), MAX),
    ("schema_version: missing", b"t-1", _without("schema"), MAX),
    ("missing_field: live", b"t-1", _without("live"), MAX),
    ("missing_field: features", b"t-1", _without("features"), MAX),
    ("missing_field: live.score", b"t-1", _with(live={"model_id": "fraud@7"}), MAX),
    ("wrong_type: score as text", b"t-1", _with(live=_live(score="0.1")), MAX),
    ("wrong_type: txn_id as a number", b"1", _with(txn_id=1), MAX),
    ("nested_feature: an object", b"t-1", _with(features={"geo": {"lat": 1.0}}), MAX),
    ("nested_feature: a list", b"t-1", _with(features={"tags": ["a"]}), MAX),
    (
        "too_deep: 65 levels of nesting",
        b"t-1",
        _json(_GOOD).replace(b'"amount":12.5', b'"amount":' + b"[" * 65 + b"]" * 65),
        MAX,
    ),
    ("too_long: a 257-character txn_id", b"t" * 257, _with(txn_id="t" * 257), MAX),
    ("out_of_range: an integer beyond int64", b"t-1", _with(features={"n": 2**63}), MAX),
    ("feature_name: a feature named txn_id", b"t-1", _with(features={"txn_id": "x"}), MAX),
    ("bad_event_time: in seconds, not ms (1970)", b"t-1", _with(event_time=1767225600), MAX),
    ("bad_event_time: the year 33658", b"t-1", _with(event_time=10**15), MAX),
    ("wrong_type: event_time with a fraction", b"t-1", _with(event_time=1767225600000.5), MAX),
    ("missing_txn_id", b"", _with(txn_id=""), MAX),
    ("bad_event_time: zero", b"t-1", _with(event_time=0), MAX),
    ("bad_event_time: negative", b"t-1", _with(event_time=-1), MAX),
    (
        "non_finite: a feature",
        b"t-1",
        _json(_GOOD).replace(b'"amount":12.5', b'"amount":1e999'),
        MAX,
    ),
    ("non_finite: the score", b"t-1", _json(_GOOD).replace(b'"score":0.12', b'"score":1e999'), MAX),
    ("key_mismatch", b"t-9", _json(_GOOD), MAX),
]

_DEFAULT = {
    "drop_fields": ["pan", "cvv", "cvv2", "cvc", "track1", "track2", "pin"],
    "hmac_fields": [],
    "hmac_key": None,
    "card_guard": "drop",
    "card_guard_exempt": [],
}
_KEY = "contract-test-key-0123456789abcdef"

REDACTION_GROUPS: list[tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]] = [
    (
        _DEFAULT,
        [
            ("clean features pass unchanged", {"amount": 12.5, "mcc": "5411", "ok": True}),
            ("drop_fields, any case", {"PAN": "4111111111111111", "Cvv2": "123", "amount": 1}),
            ("a card number under another name", {"note": "4111 1111 1111 1111", "amount": 1}),
            ("a card number as an integer", {"ref": 4111111111111111, "amount": 1}),
            ("a card number with dashes", {"memo": "paid with 3782-822463-10005 today"}),
            ("16 digits failing Luhn are kept", {"order": "4111111111111112"}),
            ("digits glued to letters are an identifier", {"token": "x4111111111111111"}),
            ("a card number in a feature's name", {"4111111111111111": 1, "amount": 2}),
            ("null values", {"pan": None, "amount": None}),
            ("nested values are refused", {"geo": {"lat": 1.0}}),
            ("lists are refused", {"tags": ["a", "b"]}),
        ],
    ),
    (
        {**_DEFAULT, "hmac_fields": ["pan"], "hmac_key": _KEY},
        [
            ("hmac_fields become HMAC-SHA256 hex", {"pan": "4111111111111111", "amount": 1}),
            ("hashing is case-insensitive too", {"Pan": "5555555555554444"}),
            ("a number is hashed as its text", {"pan": 4111111111111111}),
        ],
    ),
    (
        {**_DEFAULT, "hmac_key": _KEY, "card_guard": "hash"},
        [
            ("card_guard hash: a token instead", {"note": "4111111111111111", "amount": 1}),
        ],
    ),
    (
        {**_DEFAULT, "card_guard": "warn"},
        [
            ("card_guard warn: kept (only counted)", {"note": "4111111111111111"}),
        ],
    ),
    (
        {**_DEFAULT, "card_guard_exempt": ["created_ms"]},
        [
            (
                "a Luhn-valid epoch-ms time: exempt kept, other dropped",
                {"created_ms": 1767225600009, "other_ms": 1767225600009},
            ),
        ],
    ),
]
