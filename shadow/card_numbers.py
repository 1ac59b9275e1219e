"""Card numbers - finds payment card numbers (PANs) in feature values and in raw record bytes.

What counts as a card number, for the tap, the worker and the dead-letter topic alike:

- a *digit run* is a maximal sequence of digit groups joined by single spaces or single dashes
  (``4111111111111111``, ``4111 1111 1111 1111``, ``3782-822463-10005``);
- it holds a card number when one group, or up to eight consecutive groups, together have 13 to
  19 digits that pass the Luhn check (so a PAN followed by an expiry group, ``4111 1111 1111 1111
  12``, is still found);
- in a feature's text, a run glued to a letter or a digit on either side is part of a word or an
  identifier (a hex token, a UUID) and is not looked at;
- an integer (or a float with an integral value) is a run of its own digits;
- digits are ASCII 0-9 (a PAN written in other scripts' digits is not looked for).

In raw bytes (a dead letter is not parsed) only digits bound a run, so a PAN after an escape such
as ``\\n`` is found too; the envelope's own ``event_time`` (13 digits) is left alone.

This guards against card data reaching places by mistake (a PAN in a note, under a name nobody
listed); it cannot stop a service that disguises one on purpose (``4111x1111...``).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator

MIN_DIGITS = 13
MAX_DIGITS = 19
MAX_GROUPS = 8
"""A card number is written in at most this many groups (4-4-4-4, 4-6-5, 2-digit groups...)."""
CARD_MASK = b"[card number]"
"""What replaces a run holding a card number in a dead letter's bytes."""

_SMALLEST = 10 ** (MIN_DIGITS - 1)
# quick test: at least MIN_DIGITS digits, single separators allowed (most text fails at once)
_MAYBE = re.compile(rf"[0-9](?:[ -]?[0-9]){{{MIN_DIGITS - 1}}}")
# a maximal run (possessive: no backtracking), at least MIN_DIGITS digits long (the lookahead)
_LONG_ENOUGH = rf"(?=(?:[0-9][ -]?){{{MIN_DIGITS}}})"
_TEXT_RUN = re.compile(
    rf"(?<![^\W_])(?<![0-9][ -]){_LONG_ENOUGH}[0-9]++(?:[ -][0-9]++)*+(?![^\W_])"
)
_BYTES_RUN = re.compile(
    rb'(?<![0-9])(?<![0-9][ -])(?<!"event_time":)(?<!"event_time": )'
    + _LONG_ENOUGH.encode()
    + rb"[0-9]++(?:[ -][0-9]++)*+"
)
_BYTES_SEPARATORS = re.compile(rb"[ -]")
LONG_RUN = 512
"""Runs longer than this (bytes) are checked with numpy."""


def luhn_valid(digits: str) -> bool:
    """True when the digits (0-9) pass the Luhn check."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


_PLAIN = bytes.maketrans(b"0123456789", bytes(range(10)))
_DOUBLED = bytes.maketrans(b"0123456789", bytes([0, 2, 4, 6, 8, 1, 3, 5, 7, 9]))


def _run_holds_card(run: bytes) -> bool:
    """Whether 1 to MAX_GROUPS consecutive groups of one run (ASCII digits and single
    separators) have 13-19 digits that pass the Luhn check. Linear in the run's length: a
    hostile run of millions of short groups is looked at by numpy, not a Python loop."""
    if len(run) <= MAX_DIGITS and run.isdigit():  # the usual case: one group
        return len(run) >= MIN_DIGITS and luhn_valid(run.decode())
    if len(run) > LONG_RUN:
        return _long_run_holds_card(run)
    groups = _BYTES_SEPARATORS.split(run)
    ends = list(itertools.accumulate(map(len, groups), initial=0))
    count = len(groups)
    sums = _luhn_prefixes(b"".join(groups))
    for first in range(count):
        for last in range(first + 1, min(first + MAX_GROUPS, count) + 1):
            size = ends[last] - ends[first]
            if size > MAX_DIGITS:
                break
            if size >= MIN_DIGITS and _window_sum(sums, ends[first], ends[last]) % 10 == 0:
                return True
    return False


def _long_run_holds_card(run: bytes) -> bool:
    """_run_holds_card with numpy: every window length at once."""
    import numpy as np

    raw = np.frombuffer(run, dtype=np.uint8)
    digit = (raw >= ord("0")) & (raw <= ord("9"))
    values = raw[digit].astype(np.int64) - ord("0")
    separators = np.flatnonzero(~digit)
    ends = np.concatenate(([0], separators - np.arange(len(separators)), [len(values)]))
    doubled = np.array([0, 2, 4, 6, 8, 1, 3, 5, 7, 9])[values]
    even = np.arange(len(values)) % 2 == 0
    prefix = [np.concatenate(([0], np.cumsum(np.where(even == (p == 0), v, 0))))
              for v in (values, doubled) for p in (0, 1)]  # fmt: skip
    plain_even, plain_odd, doubled_even, doubled_odd = prefix
    count = len(ends) - 1
    for width in range(1, min(MAX_GROUPS, count) + 1):
        starts, stops = ends[: count - width + 1], ends[width:]
        size = stops - starts
        fits = (size >= MIN_DIGITS) & (size <= MAX_DIGITS)
        if not fits.any():
            continue
        total = np.where(
            stops % 2 == 0,
            doubled_even[stops] - doubled_even[starts] + plain_odd[stops] - plain_odd[starts],
            doubled_odd[stops] - doubled_odd[starts] + plain_even[stops] - plain_even[starts],
        )
        if (fits & (total % 10 == 0)).any():
            return True
    return False


def _luhn_prefixes(digits: bytes) -> tuple[list[int], ...]:
    """Prefix sums of the plain and the doubled digit values, at even and at odd positions."""
    plain, doubled = digits.translate(_PLAIN), digits.translate(_DOUBLED)
    out = []
    for values in (plain, doubled):
        for parity in (0, 1):
            masked = bytearray(len(values))
            masked[parity::2] = values[parity::2]
            out.append(list(itertools.accumulate(masked, initial=0)))
    return tuple(out)


def _window_sum(sums: tuple[list[int], ...], start: int, end: int) -> int:
    """The Luhn sum of digits[start:end]: the last digit plain, every second one before it
    doubled, i.e. doubled where the position has the parity of `end`."""
    plain_even, plain_odd, doubled_even, doubled_odd = sums
    doubled, plain = (doubled_even, plain_odd) if end % 2 == 0 else (doubled_odd, plain_even)
    return doubled[end] - doubled[start] + plain[end] - plain[start]


def text_holds_card(text: str) -> bool:
    """True when a digit run of the text holds a card number (see the module's rules)."""
    if len(text) < MIN_DIGITS or _MAYBE.search(text) is None:
        return False
    return any(_run_holds_card(run.group().encode()) for run in _TEXT_RUN.finditer(text))


def number_holds_card(value: int | float) -> bool:
    """True when an integer (or an integral float) has 13-19 digits that pass the Luhn check."""
    if isinstance(value, float):
        if not (math.isfinite(value) and value.is_integer()):
            return False
        value = int(value)
    magnitude = abs(int(value))
    if magnitude < _SMALLEST or magnitude >= 10**MAX_DIGITS:
        return False
    return luhn_valid(str(magnitude))


def holds_card(value: object) -> bool:
    """True when a feature value (text, integer or float) holds a card number; False for
    booleans, null and anything else."""
    if isinstance(value, str):
        return text_holds_card(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return number_holds_card(value)


def mask_card_numbers(data: bytes) -> tuple[bytes, int]:
    """The bytes with every digit run that holds a card number replaced by CARD_MASK, and how
    many runs were replaced (0: the very same bytes)."""
    found = list(_runs_with_cards(data))
    if not found:
        return data, 0
    parts: list[bytes] = []
    last = 0
    for start, end in found:
        parts += (data[last:start], CARD_MASK)
        last = end
    parts.append(data[last:])
    return b"".join(parts), len(found)


def _runs_with_cards(data: bytes) -> Iterator[tuple[int, int]]:
    for run in _BYTES_RUN.finditer(data):
        if run.end() - run.start() < MIN_DIGITS:
            continue
        if _run_holds_card(run.group()):
            yield run.span()
