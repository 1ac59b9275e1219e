"""Property tests of both taps: no card number leaves through offer(), at any depth, under any
name, in any usual spelling; and offer() never raises, whatever JSON-like features it gets.

What "leaves" is what the tap hands to produce(): the tap's own ``_produce`` seam is replaced by
a recorder, so the bytes checked are exactly the bytes Kafka would get.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from producers.inline import InlineTap
from producers.tap import ShadowTap
from shadow.envelope import LiveScore
from shadow.kit.dev.process import free_port
from shadow.settings import load_settings

LIVE = LiveScore("fraud@live", 0.2, "pass", 1.5)
KEY = "k" * 32
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_digit(body: str) -> str:
    """The Luhn check digit, computed the textbook way (double every second digit from the
    right of the full number, subtract 9 from two-digit results)."""
    total = 0
    for i, char in enumerate(reversed(body)):
        digit = int(char)
        if i % 2 == 0:  # these are in odd positions once the check digit is appended
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str((10 - total % 10) % 10)


pans = st.text("0123456789", min_size=12, max_size=18).map(lambda b: b + check_digit(b))


def spelled(pan: str, how: str, text: tuple[str, str]) -> Any:
    """The PAN as a service might hold it."""
    groups = " ".join(pan[i : i + 4] for i in range(0, len(pan), 4))
    if how == "int":
        return int(pan)
    if how == "spaced":
        return groups
    if how == "dashed":
        return groups.replace(" ", "-")
    if how == "in_text":
        return f"{text[0]} {pan} {text[1]}"
    return pan


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
json_like = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
names = st.sampled_from(["pan", "PAN", "Pan", "card_number", "note", "x"]) | st.text(max_size=10)
features = st.dictionaries(names, json_like, max_size=8)


@st.composite
def with_card(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """Features with one card number somewhere: a value at some depth, or a name."""
    pan = draw(pans)
    value = spelled(
        pan,
        draw(st.sampled_from(["plain", "int", "spaced", "dashed", "in_text"])),
        (draw(st.text(max_size=10)), draw(st.text(max_size=10))),
    )
    for _ in range(draw(st.integers(0, 3))):  # bury it
        value = {draw(names): value} if draw(st.booleans()) else [value]
    record = dict(draw(features))
    if draw(st.booleans()):
        record[draw(names)] = value
    else:
        record[pan] = 1  # the number as a feature's name
    return record, pan


def _tap(kind: type[InlineTap], **tap: Any) -> Iterator[tuple[InlineTap, list[bytes]]]:
    kafka = {"bootstrap_servers": f"127.0.0.1:{free_port()}", "topic": "unit"}
    instance = kind(load_settings(kafka=kafka, tap={"sample_rate": 1.0, **tap}))
    sent: list[bytes] = []
    instance._kafka.produce = lambda _topic, value, *_args: sent.append(value)
    yield instance, sent
    instance.close(0.1)


@pytest.fixture(scope="module", params=["drop", "hash"])
def inline(request: pytest.FixtureRequest) -> Iterator[tuple[InlineTap, list[bytes]]]:
    yield from _tap(InlineTap, card_guard=request.param, hmac_key=KEY)


@pytest.fixture(scope="module")
def handoff() -> Iterator[tuple[InlineTap, list[bytes]]]:
    yield from _tap(ShadowTap)


def _leaked(sent: list[bytes], pan: str) -> bool:
    """The PAN in any spelling, as a whole number (not part of a longer one), in what left."""
    groups = [pan[i : i + 4] for i in range(0, len(pan), 4)]
    spellings = (pan, " ".join(groups), "-".join(groups))
    found = [re.compile(rf"(?<![0-9]){re.escape(s)}(?![0-9])".encode()) for s in spellings]
    return any(p.search(value) for p in found for value in sent)


def _settle(tap: InlineTap) -> None:
    deadline = time.monotonic() + 5
    while getattr(tap, "_pending", None) and time.monotonic() < deadline:
        time.sleep(0.001)
    time.sleep(0.002)  # the record the sender popped last is produced by now


@PROPERTY
@given(case=with_card())
def test_no_card_number_leaves_the_inline_tap(inline: Any, case: Any) -> None:
    tap, sent = inline
    record, pan = case
    sent.clear()
    tap.offer("t-1", record, LIVE)
    assert not _leaked(sent, pan)


@settings(max_examples=100, deadline=None)
@given(case=with_card())
def test_no_card_number_leaves_the_shadow_tap(handoff: Any, case: Any) -> None:
    tap, sent = handoff
    record, pan = case
    sent.clear()
    tap.offer("t-1", record, LIVE)
    _settle(tap)
    assert not _leaked(sent, pan)


@PROPERTY
@given(record=features, txn_id=st.text(max_size=10), when=st.none() | st.integers())
def test_offer_never_raises_and_every_offer_is_counted(
    inline: Any, record: dict[str, Any], txn_id: str, when: int | None
) -> None:
    tap, _sent = inline
    before = tap.stats()["offered"]
    accepted = tap.offer(txn_id, record, LIVE, when)
    assert isinstance(accepted, bool)
    stats = tap.stats()
    assert stats["offered"] == before + 1
    assert stats["offered"] == sum(
        stats[k] for k in ("sampled_out", "enqueued", "dropped", "rejected")
    )


@settings(max_examples=100, deadline=None)
@given(record=features | st.builds(object) | st.none(), txn_id=st.text(max_size=10) | st.none())
def test_shadow_tap_offer_never_raises(handoff: Any, record: Any, txn_id: Any) -> None:
    tap, _sent = handoff
    assert isinstance(tap.offer(txn_id, record, LIVE), bool)
