"""What a `shadow tap` run ends with: librdkafka's chatter held back, and a verdict on delivery.

A tap run against a broker that is away would otherwise stream hundreds of librdkafka lines
and exit 0 with nothing delivered; here the chatter is counted (the last line kept for the
error message) and the run fails with one line when nothing was delivered or when more than
``--max-failed`` of the sampled transactions were lost.
"""

from __future__ import annotations

import logging
import re
from types import TracebackType
from typing import Any

from shadow.errors import DeliveryFailed

HELD_LOGGERS = ("producers.tap", "shadow.librdkafka")
"""The tap's own warnings (throttled broker errors) and every client's librdkafka log."""


TAP_LOGGER = "producers.tap"
"""The tap's own lines (a delivery failure with the broker's error) say more than librdkafka's
retries, so the last of them is the one quoted."""


class HeldBack(logging.Handler):
    """Counts the records of HELD_LOGGERS instead of printing them; keeps the last one, the
    tap's own when there is one."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.last: logging.LogRecord | None = None
        self.last_of_tap: logging.LogRecord | None = None
        self._saved: list[tuple[logging.Logger, bool]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        self.last = record
        if record.name == TAP_LOGGER:
            self.last_of_tap = record

    def last_line(self) -> str:
        record = self.last_of_tap or self.last
        if record is None:
            return ""
        line = record.getMessage().splitlines()[0][:300]
        return re.sub(r" \(\d+ similar held back\)$", "", line)

    def __enter__(self) -> HeldBack:
        for name in HELD_LOGGERS:
            log = logging.getLogger(name)
            self._saved.append((log, log.propagate))
            log.propagate = False
            log.addHandler(self)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for log, propagate in self._saved:
            log.removeHandler(self)
            log.propagate = propagate
        self._saved.clear()

    def summary(self) -> str:
        """One line for stderr, or "" when nothing was held back."""
        if not self.count:
            return ""
        return f"{self.count} warning(s) from the tap and librdkafka held back; last: " + (
            self.last_line()
        )


def check_delivery(topic: str, stats: dict[str, Any], max_failed: float, held: HeldBack) -> None:
    """Raise DeliveryFailed (exit 1, one line) when nothing was delivered, or when the share
    of sampled transactions not delivered (failed, dropped or rejected) exceeds max_failed."""
    lost = stats["failed"] + stats["dropped"] + stats["rejected"]
    sampled = stats["enqueued"] + stats["dropped"] + stats["rejected"]
    why = f" (broker said: {held.last_line()})" if held.count else ""
    if stats["delivered"] == 0:
        if sampled == 0:
            raise DeliveryFailed(
                topic,
                f"nothing delivered: no transaction of {stats['offered']} "
                "offered was sampled (check the input and --sample-rate)",
            )
        raise DeliveryFailed(
            topic, f"nothing delivered: {lost} of {sampled} sampled transactions lost{why}"
        )
    if lost > max_failed * sampled:
        raise DeliveryFailed(
            topic,
            f"{lost} of {sampled} sampled transactions not delivered ({lost / sampled:.2%}, "
            f"more than --max-failed {max_failed:.2%}){why}",
        )
