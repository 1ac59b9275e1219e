"""Logging setup for every entry point: text or JSON lines, never payloads or secrets."""

from __future__ import annotations

import json
import logging
import sys

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
