"""Card numbers: the Luhn check, what text and numbers count, and masking in raw bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shadow.card_numbers import (
    CARD_MASK,
    holds_card,
    luhn_valid,
    mask_card_numbers,
    number_holds_card,
    text_holds_card,
)

# the networks' published test numbers: Visa 16 and 13, Mastercard, Amex 15, Discover, JCB,
# Diners 14, a 19-digit Visa
PUBLISHED = [
    "4111111111111111",
    "4222222222222",
    "5555555555554444",
    "2223003122003222",
    "378282246310005",
    "6011111111111117",
    "3530111333300000",
    "30569309025904",
    "4000000000000000006",
]


@pytest.mark.parametrize("pan", PUBLISHED)
def test_published_test_numbers_pass_luhn_and_one_changed_digit_does_not(pan: str) -> None:
    assert luhn_valid(pan)
    changed = pan[:-1] + str((int(pan[-1]) + 1) % 10)
    assert not luhn_valid(changed)


@given(st.text("0123456789", min_size=12, max_size=18))
def test_exactly_one_check_digit_completes_any_number(body: str) -> None:
    # the defining property of a check digit, independent of how luhn_valid computes it
    assert sum(luhn_valid(body + digit) for digit in "0123456789") == 1


@pytest.mark.parametrize(
    "text",
    [
        "4111111111111111",
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "3782 822463 10005",
        "card: 4111111111111111, thanks",
        "pan=4111111111111111",
        "4111 1111 1111 1111 12/27",  # an expiry group after the PAN
        "ref 12 4111 1111 1111 1111",  # a group before it
        "(4111111111111111)",
        "x.4111111111111111",
        "line\n4111111111111111",
    ],
)
def test_text_with_a_card_number(text: str) -> None:
    assert text_holds_card(text)


@pytest.mark.parametrize(
    "text",
    [
        "4111111111111112",  # Luhn fails
        "411111111111",  # 12 digits
        "41111111111111111111",  # 20 digits written together: not a card number
        "a4111111111111111",  # glued to a word: an identifier
        "4111111111111111b",
        "123e4567-e89b-12d3-a456-426614174000",  # a UUID
        "4111  1111  1111  1111",  # double spaces end a run: groups of 4 digits only
        "5411",
        "",
    ],
)
def test_text_without_a_card_number(text: str) -> None:
    assert not text_holds_card(text)


def test_numbers() -> None:
    assert number_holds_card(4111111111111111)
    assert number_holds_card(-4111111111111111)
    assert number_holds_card(4111111111111111.0)
    assert not number_holds_card(4111111111111112)
    assert not number_holds_card(411111111111)  # 12 digits
    assert not number_holds_card(4111111111111111.5)
    assert not number_holds_card(float("nan"))
    assert not number_holds_card(float("inf"))
    assert not number_holds_card(10**40)
    assert not holds_card(True)
    assert not holds_card(None)
    assert holds_card("4111111111111111") and holds_card(4111111111111111)


def test_masking_bytes_leaves_event_time_and_short_numbers() -> None:
    event_time = 1767225600009  # 13 digits, Luhn-valid
    assert luhn_valid(str(event_time))
    raw = (
        b'{"event_time":' + str(event_time).encode() + b',"features":{"note":"a\\n4111 1111 1111'
        b' 1111","n":4111111111111111,"amount":12.5}}'
    )
    masked, count = mask_card_numbers(raw)
    assert count == 2
    assert b"4111" not in masked
    assert str(event_time).encode() in masked
    assert masked.count(CARD_MASK) == 2
    assert b'"amount":12.5' in masked
    clean = b'{"amount": 12.5}'
    assert mask_card_numbers(clean) == (clean, 0)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(PUBLISHED), st.binary(max_size=300))
def test_masking_finds_a_card_number_between_any_bytes(
    before: bytes, pan: str, after: bytes
) -> None:
    raw = before + b" " + pan.encode() + b" " + after
    masked, count = mask_card_numbers(raw)
    assert count >= 1
    assert pan.encode() not in masked


def _windows_hold_card(groups: list[str]) -> bool:
    """The rule, written plainly: 1 to 8 consecutive groups with 13-19 digits, Luhn-valid."""
    for first in range(len(groups)):
        for last in range(first + 1, min(first + 8, len(groups)) + 1):
            digits = "".join(groups[first:last])
            if 13 <= len(digits) <= 19 and luhn_valid(digits):
                return True
    return False


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.text("0123456789", min_size=1, max_size=7), min_size=1, max_size=16),
    st.sampled_from([" ", "-"]),
)
def test_both_ways_of_reading_a_run_follow_the_rule(groups: list[str], separator: str) -> None:
    from shadow.card_numbers import _long_run_holds_card, _run_holds_card

    run = separator.join(groups).encode()
    assert _run_holds_card(run) == _long_run_holds_card(run) == _windows_hold_card(groups)


@pytest.mark.parametrize(
    "hostile",
    [
        "1 " * 50_000,  # one run of 50,000 one-digit groups (took over a minute before)
        "11 " * 30_000,
        "1-" * 50_000 + "x",
        "9" * 100_000,
        "4111111111111111a " * 5_000,
    ],
)
def test_hostile_runs_are_read_whole_and_a_card_after_them_is_found(hostile: str) -> None:
    assert not text_holds_card(hostile)
    assert text_holds_card(hostile + " 4111 1111 1111 1111")
    masked, count = mask_card_numbers((hostile + " 4111 1111 1111 1111").encode())
    assert count >= 1 and not masked.endswith(b"1111")
