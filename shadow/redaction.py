"""Redaction - card data is dropped or replaced by a keyed HMAC before anything leaves the process.

``drop_fields`` are removed; ``hmac_fields`` are replaced by
``hex(HMAC-SHA256(UTF-8(tap.hmac_key), UTF-8(str(value))))`` (lowercase, 64 characters), so the
same PAN gives the same token in every service sharing the key and can still be joined on,
while the PAN itself never reaches Kafka, S3, the DLQ or a log. A field named in both lists is
hashed (hashing is the explicit opt-in). Names match exactly (case-sensitive).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from shadow.errors import ConfigError
from shadow.settings import TapSettings

logger = logging.getLogger(__name__)

MIN_KEY_BYTES = 32
"""Keys shorter than this are accepted with a warning (HMAC-SHA256 wants 32 bytes or more)."""


class Redactor:
    """Removes and pseudonymises configured feature fields; returns other records untouched."""

    __slots__ = ("_drop", "_hmac", "_key", "_sensitive")

    def __init__(
        self, drop_fields: Iterable[str], hmac_fields: Iterable[str], hmac_key: bytes | None
    ) -> None:
        self._hmac = frozenset(hmac_fields)
        self._drop = frozenset(drop_fields) - self._hmac
        if self._hmac and not hmac_key:
            # fail closed: without a key the PAN would pass through or the tap would guess
            raise ConfigError(
                "tap.hmac_key",
                f"required because tap.hmac_fields is {sorted(self._hmac)}: set it (e.g. "
                "SHADOW__TAP__HMAC_KEY) or move those fields to tap.drop_fields",
            )
        if self._hmac and hmac_key and len(hmac_key) < MIN_KEY_BYTES:
            logger.warning("tap.hmac_key is %d bytes; use %d or more", len(hmac_key), MIN_KEY_BYTES)
        self._key = hmac_key or b""
        self._sensitive = self._drop | self._hmac

    @classmethod
    def from_settings(cls, tap: TapSettings) -> Redactor:
        key = tap.hmac_key.get_secret_value().encode() if tap.hmac_key else None
        return cls(tap.drop_fields, tap.hmac_fields, key)

    @property
    def sensitive(self) -> frozenset[str]:
        """Every field name this redactor removes or replaces."""
        return self._sensitive

    def redact(self, features: dict[str, Any]) -> dict[str, Any]:
        """The features with sensitive fields handled; the same dict when none is present.

        The caller's dict is never modified: a redacted record is a new dict.
        """
        if features.keys().isdisjoint(self._sensitive):
            return features
        return self.scrub(features)

    def scrub(self, features: Mapping[str, Any]) -> dict[str, Any]:
        """A new dict without drop_fields and with hmac_fields replaced by their token."""
        out = {name: value for name, value in features.items() if name not in self._drop}
        for name in self._hmac.intersection(out):
            if out[name] is not None:
                out[name] = self.token(out[name])
        return out

    def token(self, value: Any) -> str:
        """HMAC-SHA256 of str(value) under the key, lowercase hex."""
        return hmac.digest(self._key, str(value).encode(), "sha256").hex()
