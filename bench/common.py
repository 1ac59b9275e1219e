"""What the benches share: their output, and a broker of their own when none is configured."""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from shadow.settings import Settings


def emit(result: dict[str, Any], as_json: bool) -> None:
    """One JSON line with --json, else one aligned line per figure."""
    if as_json:
        print(json.dumps(result))
    else:
        for name, value in result.items():
            print(f"{name:>20}  {value}")
    sys.stdout.flush()


@contextmanager
def bench_broker(
    settings: Settings, started: Callable[[int], None] | None = None
) -> Iterator[Settings]:
    """The settings' broker, else a LocalKafka of our own in a temp folder, stopped after;
    ``started`` is called with its process id (never for a broker the settings name)."""
    if settings.kafka.bootstrap_servers:
        yield settings
        return
    from shadow.kit.dev.kafka import LocalKafka

    with tempfile.TemporaryDirectory(prefix="bench-kafka-") as run_dir:
        kafka = LocalKafka(settings.kafka.dev_version, settings.kafka.dev_home, Path(run_dir))
        state = kafka.start()
        try:
            if started is not None and state.pid:
                started(state.pid)
            yield with_kafka(settings, bootstrap_servers=state.bootstrap)
        finally:
            kafka.stop()


def with_kafka(settings: Settings, **kafka: object) -> Settings:
    return settings.model_copy(update={"kafka": settings.kafka.model_copy(update=kafka)})
