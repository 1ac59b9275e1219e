"""decode_many: a consumed batch decoded at once gives, record by record, what decode() gives
(the same Envelope, or an EnvelopeError with the same reason and detail), whatever the batch."""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from shadow.envelope import MAX_DEPTH, MAX_FEATURE_NAME_CHARS, decode, decode_many
from shadow.errors import EnvelopeError

T0 = 1_767_225_600_000
NARROW = (T0 - 1000, T0 + 1000)


def mostly(good: object, *bad: object) -> st.SearchStrategy:
    """The good value 20 times in 21, one of the bad ones otherwise: a batch of such records
    is often plain throughout, so the batch-wide checks are what decides."""
    return st.sampled_from([good] * (20 * len(bad)) + list(bad))


NAMES = st.one_of(
    mostly("amount", "txn_id", "date", "", "x" * (MAX_FEATURE_NAME_CHARS + 1)),
    st.sampled_from(["mcc", "é" * MAX_FEATURE_NAME_CHARS, "😀" * (MAX_FEATURE_NAME_CHARS + 1)]),
    st.text(max_size=6),
)
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**65), max_value=2**65),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)


@st.composite
def records(draw: st.DrawFn) -> tuple[bytes | None, bytes | None]:
    txn_id = draw(mostly("t-1", "t-2", ""))
    record = {
        "schema": draw(mostly(1, 2, "1")),
        "txn_id": txn_id,
        "event_time": draw(mostly(T0, T0 + 999, T0 + 1000, 0, T0 - 1001)),
        "live": {
            "model_id": "fraud@7",
            "score": draw(mostly(0.5, 1e308, -1e308)),
            "decision": draw(st.sampled_from(["pass", None])),
        },
        "features": draw(st.dictionaries(NAMES, VALUES, max_size=4)),
    }
    value = msgspec.json.encode(record)
    value = draw(
        mostly(
            *[
                value,
                value[:-3],
                value + b" " * 2000,
                b"",
                b"[1]",
                value.replace(
                    b'"live"',
                    b'"pad":' + b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1) + b',"live"',
                ),
                value.replace(b'"live"', b'"pad":' + b"[[]]" * (MAX_DEPTH) + b',"live"'),
            ]
        )
    )
    key = draw(mostly(txn_id.encode(), None, b"other"))
    return value if value else draw(st.sampled_from([value, None])), key


def _one(value: bytes | None, key: bytes | None) -> object:
    try:
        return decode(value, key, 2000, NARROW)
    except EnvelopeError as exc:
        return (exc.reason, str(exc))


@settings(max_examples=500, deadline=None)
@given(st.lists(records(), max_size=12))
def test_a_batch_decodes_as_its_records_do_one_by_one(batch) -> None:
    values = [value for value, _ in batch]
    keys = [key for _, key in batch]
    decoded = decode_many(values, keys, 2000, NARROW)
    got = [
        (item.reason, str(item)) if isinstance(item, EnvelopeError) else item
        for item in decoded.items
    ]
    assert got == [_one(value, key) for value, key in batch]
    assert decoded.refused == [i for i, item in enumerate(got) if isinstance(item, tuple)]


def test_a_plain_batch_is_decoded_whole() -> None:
    good = [
        msgspec.json.encode(
            {
                "schema": 1,
                "txn_id": f"t-{i}",
                "event_time": T0,
                "live": {"model_id": "m", "score": 0.1},
                "features": {"amount": float(i), "mcc": "5411"},
            }
        )
        for i in range(50)
    ]
    keys = [f"t-{i}".encode() for i in range(50)]
    decoded = decode_many(good, keys)
    assert decoded.refused == []
    assert [e.features["amount"] for e in decoded.items] == [float(i) for i in range(50)]
    assert decoded.items == [decode(v, k) for v, k in zip(good, keys, strict=True)]
