"""Logging setup for every entry point: text or JSON lines, never payloads or secrets."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time

from shadow.settings import LogSettings


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data)


def configure_logging(settings: LogSettings) -> None:
    """Send shadow's logs to stderr at the configured level; quiet chatty third parties."""
    handler = logging.StreamHandler(sys.stderr)
    if settings.json_lines:
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    for name in ("shadow", "producers", "consumers", "analysis"):
        logging.getLogger(name).setLevel(settings.level.upper())


class Throttled:
    """A log line at most every `every_s` seconds, with how many similar ones were held back.

    For trouble that can repeat once per record (a rejected offer, a card number in traffic):
    the first line is written at once, later ones within the interval are only counted.
    """

    def __init__(self, logger: logging.Logger, level: int, every_s: float = 10.0) -> None:
        self._logger = logger
        self._level = level
        self._every_s = every_s
        self._next = 0.0
        self._held = 0
        self._lock = threading.Lock()

    def log(self, message: str, *args: object) -> None:
        now = time.monotonic()
        with self._lock:
            if now < self._next:
                self._held += 1
                return
            held, self._held, self._next = self._held, 0, now + self._every_s
        self._logger.log(self._level, message + " (%d similar held back)", *args, held)
