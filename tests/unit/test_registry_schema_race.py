"""Several processes opening one fresh registry at once (workers, the demo, a CI job) all get
it: the one that loses the race to create a table finds it made instead of failing."""

from __future__ import annotations

import threading
from pathlib import Path

from shadow.registry_db import open_engine


def test_processes_creating_one_fresh_sqlite_registry_at_once_all_succeed(tmp_path: Path) -> None:
    for round_ in range(5):
        url = f"sqlite:///{tmp_path}/registry-{round_}.db"
        start = threading.Barrier(6)
        errors: list[Exception] = []

        def open_it(
            url: str = url, start: threading.Barrier = start, errors: list = errors
        ) -> None:
            start.wait()
            try:
                open_engine(url).dispose()
            except Exception as exc:  # noqa: BLE001 - every failure is what the test reports
                errors.append(exc)

        threads = [threading.Thread(target=open_it) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == [], errors
