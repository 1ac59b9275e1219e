"""Redaction - card data is dropped or replaced by a keyed HMAC before anything leaves the process.

One function for both taps and for the worker's stored features: ``Redactor.redact``.

- ``drop_fields`` are removed; ``hmac_fields`` are replaced by
  ``hex(HMAC-SHA256(UTF-8(tap.hmac_key), UTF-8(str(value))))`` (lowercase, 64 characters), so
  the same PAN gives the same token in every service sharing the key and can still be joined on.
  A field named in both lists is hashed (hashing is the explicit opt-in). Names match
  case-insensitively (``PAN``, ``Pan`` and ``pan`` are one name).
- The card guard (``tap.card_guard``) looks at every other value, whatever its name: one that
  holds a card number (``shadow.card_numbers``) is dropped, hashed as above, or only counted and
  warned about (the warning names the feature, never the value). Names in
  ``tap.card_guard_exempt`` are left alone.
- Features are flat: a value that is not a string, number, boolean or null (a dict, a list, a
  datetime...) makes ``redact`` raise ValueError, and the tap rejects and counts the record. So
  nothing nested ever leaves the process, and the envelope contract holds before Kafka.

A record whose names were all seen before and whose values are all short strings, small numbers,
booleans or null is returned as it is, after one pass over its values.
"""

from __future__ import annotations

import hmac
import itertools
import logging
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from shadow.card_numbers import MIN_DIGITS, holds_card, text_holds_card
from shadow.errors import ConfigError
from shadow.logs import Throttled
from shadow.settings import TapSettings

logger = logging.getLogger(__name__)

CardGuard = Literal["drop", "hash", "warn"]
MIN_KEY_BYTES = 32
"""Keys shorter than this are accepted with a warning (HMAC-SHA256 wants 32 bytes or more)."""
MAX_KNOWN_NAMES = 10_000
"""Feature names remembered as harmless; beyond, new names take the slow path every time."""
_BIG = 1e12  # integers below this have at most 12 digits: never a card number
_SCALAR = (str, int, float)


class Redactor:
    """Removes and pseudonymises card data in feature dicts; returns clean records untouched."""

    __slots__ = (
        "_by_name",
        "_clean",
        "_drop",
        "_exempt",
        "_exempt_seen",
        "_guard",
        "_hmac",
        "_key",
        "_null",
        "_sensitive",
        "_warned",
        "caught",
    )

    def __init__(
        self,
        drop_fields: Iterable[str],
        hmac_fields: Iterable[str],
        hmac_key: bytes | None,
        card_guard: CardGuard = "drop",
        exempt: Iterable[str] = (),
        keep_columns: bool = False,
    ) -> None:
        self._hmac = frozenset(name.casefold() for name in hmac_fields)
        self._drop = frozenset(name.casefold() for name in drop_fields) - self._hmac
        self._exempt = frozenset(name.casefold() for name in exempt)
        self._sensitive = self._drop | self._hmac
        self._guard = card_guard
        self._null = keep_columns  # a dropped field becomes null: its table column stays
        self._key = _checked_key(hmac_key, sorted(self._hmac), card_guard)
        self._clean: frozenset[str] = frozenset()
        self._by_name: dict[str, bool] = {}  # seen sensitive names: True = hashed, else dropped
        self._exempt_seen: frozenset[str] = frozenset()
        self._warned = Throttled(logger, logging.WARNING)
        self.caught = itertools.count()
        """Values (or names) the card guard found a card number in, whatever it then did."""

    @classmethod
    def from_settings(cls, tap: TapSettings) -> Redactor:
        """The tap's redactor: drop_fields, hmac_fields and the card guard."""
        key = tap.hmac_key.get_secret_value().encode() if tap.hmac_key else None
        return cls(tap.drop_fields, tap.hmac_fields, key, tap.card_guard, tap.card_guard_exempt)

    @classmethod
    def downstream(cls, tap: TapSettings) -> Redactor:
        """For records that already passed a tap (the worker's stored features): drop_fields
        and the card guard, but hmac_fields are left as they are (a token must not be hashed
        again; a raw PAN under such a name is still caught by the guard, as a token never is).
        A dropped field becomes null, so a batch's table keeps its columns."""
        key = tap.hmac_key.get_secret_value().encode() if tap.hmac_key else None
        drop = set(tap.drop_fields) - set(tap.hmac_fields)
        return cls(drop, (), key, tap.card_guard, tap.card_guard_exempt, keep_columns=True)

    @property
    def sensitive(self) -> frozenset[str]:
        """Every field name (case-folded) this redactor removes or replaces by name."""
        return self._sensitive

    def redact(self, features: dict[str, Any]) -> dict[str, Any]:
        """The features with card data handled; the same dict when there is nothing to do.

        The caller's dict is never modified: a redacted record is a new dict. ValueError for a
        value that is not a string, number, boolean or null, or a name that is not a string.
        """
        if self._clean.issuperset(features):
            return self.scrub(features) if self._suspect(features) else features
        named = features.keys() - self._clean
        if not named <= self._by_name.keys():
            return self.scrub(features)  # a name never seen: the full look, and learn it
        return self._by_names(features, named)

    def _by_names(self, features: dict[str, Any], named: set[str]) -> dict[str, Any]:
        """A record whose only unusual names are known drop or HMAC fields (a `pan` in every
        record): those handled by name, the rest through the fast pass."""
        out = {name: value for name, value in features.items() if name not in named}
        for name in named:
            value = features[name]
            if value is not None and not isinstance(value, _SCALAR):
                return self.scrub(features)  # refused there, with the reason
        if self._suspect(out):
            return self.scrub(features)
        for name in named:
            value = features[name]
            if self._by_name[name]:
                out[name] = None if value is None else self.token(value)
            elif self._null:
                out[name] = None
        return out

    def _suspect(self, features: dict[str, Any]) -> bool:
        """Whether a record needs the full look: a nested or unusual value, or one that may
        hold a card number. One pass, exact types: floats, flags, nulls, short strings and
        small integers cost a comparison or two each."""
        exempt = self._exempt_seen
        for name, value in features.items():
            kind = type(value)
            if kind is float or kind is int:
                if -_BIG < value < _BIG or name in exempt:
                    continue
            elif kind is str:
                if len(value) < MIN_DIGITS or name in exempt or not text_holds_card(value):
                    continue
            elif kind is bool or value is None:
                continue
            return True  # a big number, a card number, or another type (numpy.float64...)
        return False

    def scrub(self, features: Mapping[str, Any]) -> dict[str, Any]:
        """The features without drop_fields, with hmac_fields replaced by their token and the
        card guard applied to every other value: a new dict, or the same one when nothing
        changed."""
        out: dict[str, Any] = {}
        learned: list[str] = []
        for name, value in features.items():
            kept = self._field(name, value)
            if kept is not _DROPPED:
                out[name] = kept
            elif self._null:
                out[name] = None
            if name not in self._clean:
                learned.append(name)
        self._learn(learned)
        unchanged = len(out) == len(features) and all(out[k] is v for k, v in features.items())
        return features if unchanged and isinstance(features, dict) else out

    def _field(self, name: object, value: Any) -> Any:
        if not isinstance(name, str):
            raise ValueError("a feature name is not a string")
        if value is not None and not isinstance(value, _SCALAR):
            raise ValueError(
                f"feature {_label(name)} is a {type(value).__name__}: features must be "
                "strings, numbers, booleans or null (nested values are refused)"
            )
        folded = name.casefold()
        if folded in self._drop:
            return _DROPPED
        if folded in self._hmac:
            return None if value is None else self.token(value)
        if text_holds_card(name):
            return self._caught(name, value, in_name=True)
        if folded in self._exempt or not holds_card(value):
            return value
        return self._caught(name, value)

    def _caught(self, name: str, value: Any, in_name: bool = False) -> Any:
        """What the guard keeps of a feature holding a card number (in its value or name)."""
        next(self.caught)
        where = "the name of a feature" if in_name else f"feature {_label(name)}"
        if self._guard == "warn":
            self._warned.log("a card number in %s: kept (tap.card_guard: warn)", where)
            return value
        if self._guard == "hash" and not in_name:
            self._warned.log("a card number in %s: replaced by its HMAC token", where)
            return self.token(value)
        self._warned.log("a card number in %s: dropped", where)
        return _DROPPED

    def _learn(self, names: list[str]) -> None:
        """Remember harmless names, so their records can take the fast path."""
        fresh = [n for n in names if isinstance(n, str) and not text_holds_card(n)]
        if len(self._clean) + len(self._by_name) >= MAX_KNOWN_NAMES:
            return
        named = {n: n.casefold() in self._hmac for n in fresh if n.casefold() in self._sensitive}
        if named:
            self._by_name = {**self._by_name, **named}
        fresh = [n for n in fresh if n not in named]
        if not fresh:
            return
        exempt = [n for n in fresh if n.casefold() in self._exempt]
        if exempt:  # before _clean: a name is never clean without being known as exempt
            self._exempt_seen = self._exempt_seen.union(exempt)
        self._clean = self._clean.union(fresh)

    def token(self, value: Any) -> str:
        """HMAC-SHA256 of str(value) under the key, lowercase hex."""
        return hmac.digest(self._key, str(value).encode(), "sha256").hex()


class _Dropped:
    """Marks a field the redactor leaves out."""


_DROPPED: Any = _Dropped()


def _checked_key(key: bytes | None, hmac_fields: list[str], card_guard: str) -> bytes:
    # fail closed: without a key the PAN would pass through or the tap would guess
    if hmac_fields and not key:
        raise ConfigError(
            "tap.hmac_key",
            f"required because tap.hmac_fields is {hmac_fields}: set it (e.g. "
            "SHADOW__TAP__HMAC_KEY) or move those fields to tap.drop_fields",
        )
    if card_guard == "hash" and not key:
        raise ConfigError(
            "tap.hmac_key",
            "required because tap.card_guard is hash: set it (e.g. SHADOW__TAP__HMAC_KEY) or "
            "set tap.card_guard to drop",
        )
    if key and len(key) < MIN_KEY_BYTES and (hmac_fields or card_guard == "hash"):
        logger.warning("tap.hmac_key is %d bytes; use %d or more", len(key), MIN_KEY_BYTES)
    return key or b""


def _label(name: str) -> str:
    """A feature name fit for a log line: quoted and escaped, never a card number."""
    if text_holds_card(name):
        return "<a name holding a card number>"
    shown = repr(name)
    return shown if len(shown) <= 80 else shown[:77] + "..."
