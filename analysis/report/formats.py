"""Formats - numbers as the report prints them ("n/a" for a figure not measured)."""

from __future__ import annotations

import math
from typing import Any

NA = "n/a"


def number(value: Any, pattern: str = "{:.4g}") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NA
    try:
        return pattern.format(value)
    except (TypeError, ValueError):
        return NA


def count(value: Any) -> str:
    return number(value, "{:,.0f}")


def share(value: Any, digits: int = 2) -> str:
    return number(value, "{:." + str(digits) + "%}")


def signed(value: Any) -> str:
    return number(value, "{:+.4f}")


def interval(low: Any, high: Any) -> str:
    if low is None and high is None:
        return NA
    return f"[{signed(low)}, {signed(high)}]"
