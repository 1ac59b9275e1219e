"""Window - parse the time window of a comparison: `START..END` (ISO) or a relative span."""

from __future__ import annotations

import datetime as dt
import re

from shadow.errors import UsageError

_SPAN = re.compile(r"^(\d+(?:\.\d+)?)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_window(text: str, now: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) in UTC from `24h`, `7d`, `2026-01-01` (a day), or `START..END`.

    Each side of `..` is an ISO date or time (naive means UTC), a relative span back from now
    (`48h..24h`), or empty (`..` alone is not allowed; `2026-01-01..` ends now).
    """
    now = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    text = text.strip()
    if ".." in text:
        left, right = (part.strip() for part in text.split("..", 1))
        if not left:
            raise UsageError(f"window {text!r}: the start is missing (e.g. 2026-01-01..{right})")
        start, end = _moment(left, now, text), _moment(right, now, text) if right else now
    elif _SPAN.match(text):
        start, end = _moment(text, now, text), now
    else:
        start = _moment(text, now, text)
        if len(text) != 10:
            raise UsageError(f"window {text!r}: give START..END, a day (YYYY-MM-DD) or a span")
        end = start + dt.timedelta(days=1)
    if end <= start:
        raise UsageError(f"window {text!r}: the end must be after the start")
    return start, end


def _moment(part: str, now: dt.datetime, text: str) -> dt.datetime:
    span = _SPAN.match(part)
    if span:
        return now - dt.timedelta(**{_UNITS[span.group(2)]: float(span.group(1))})
    try:
        moment = dt.datetime.fromisoformat(part.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"window {text!r}: {part!r} is neither an ISO date/time nor a span like 24h"
        ) from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)
