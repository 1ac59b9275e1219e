"""Card numbers - finds payment card numbers (PANs) in feature values and in raw record bytes.

What counts as a card number, for the tap, the worker and the dead-letter topic alike:

- a *digit run* is a maximal sequence of digit groups joined by single spaces or single dashes
  (``4111111111111111``, ``4111 1111 1111 1111``, ``3782-822463-10005``);
- it holds a card number when one group, or several consecutive groups, together have 13 to 19
  digits that pass the Luhn check (so a PAN followed by an expiry group, ``4111 1111 1111 1111
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

import math
import re
from collections.abc import Iterator

MIN_DIGITS = 13
MAX_DIGITS = 19
CARD_MASK = b"[card number]"
"""What replaces a run holding a card number in a dead letter's bytes."""

_SMALLEST = 10 ** (MIN_DIGITS - 1)
# quick test: at least MIN_DIGITS digits, single separators allowed (most text fails at once)
_MAYBE = re.compile(rf"[0-9](?:[ -]?[0-9]){{{MIN_DIGITS - 1}}}")
_TEXT_RUN = re.compile(r"(?<![^\W_])(?<![0-9][ -])[0-9]+(?:[ -][0-9]+)*(?![ -][0-9])(?![^\W_])")
_BYTES_RUN = re.compile(
    rb'(?<![0-9])(?<![0-9][ -])(?<!"event_time":)(?<!"event_time": )'
    rb"[0-9]+(?:[ -][0-9]+)*(?![ -]?[0-9])"
)
_SEPARATORS = re.compile(r"[ -]")


def luhn_valid(digits: str) -> bool:
    """True when the digits (0-9) pass the Luhn check."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _groups_hold_card(groups: list[str]) -> bool:
    """Whether consecutive groups of one run have 13-19 digits that pass the Luhn check."""
    for first in range(len(groups)):
        digits = ""
        for group in groups[first:]:
            digits += group
            if len(digits) > MAX_DIGITS:
                break
            if len(digits) >= MIN_DIGITS and luhn_valid(digits):
                return True
    return False


def text_holds_card(text: str) -> bool:
    """True when a digit run of the text holds a card number (see the module's rules)."""
    if len(text) < MIN_DIGITS or _MAYBE.search(text) is None:
        return False
    return any(
        _groups_hold_card(_SEPARATORS.split(run.group())) for run in _TEXT_RUN.finditer(text)
    )


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
        groups = re.split(rb"[ -]", run.group())
        if _groups_hold_card([group.decode() for group in groups]):
            yield run.span()
