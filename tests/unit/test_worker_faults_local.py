"""Faults a worker meets around it: a local store refusing writes, stale temp files, a noisy
librdkafka, signals while it is busy."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from consumers.shutdown import Shutdown
from shadow.errors import StoreError
from shadow.kafka_logs import KafkaLog
from shadow.objectstore import STALE_TEMP_SECONDS, LocalStore, temp_tag
from shadow.watchdog import RunWatchdog

KEY = "predictions/date=2026-01-01/t+0+00000000000000000000.parquet"


def _temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(".tmp-")]


def test_a_store_whose_folder_is_a_file_fails_as_a_store_error(tmp_path: Path) -> None:
    # root ignores permissions, so a folder that refuses writes is made another way: the
    # dataset's folder is a file, and mkdir fails (ENOTDIR) for root as for anyone
    (tmp_path / "predictions").write_bytes(b"not a folder")
    store = LocalStore(tmp_path)
    with pytest.raises(StoreError, match="cannot write"):
        store.put(KEY, b"data")
    assert _temp_files(tmp_path) == []


def test_a_failed_rename_leaves_no_temp_file(tmp_path: Path) -> None:
    # the object's path is a non-empty folder: the temp file is written whole, then the rename
    # fails (EISDIR, for root too) - the temp file must go
    (tmp_path / KEY / "x").mkdir(parents=True)
    store = LocalStore(tmp_path, "worker-a")
    with pytest.raises(StoreError, match="cannot write"):
        store.put(KEY, b"data" * 5000)
    assert _temp_files(tmp_path) == []


def test_a_write_refused_by_the_kernel_leaves_no_temp_file(tmp_path: Path) -> None:
    # RLIMIT_FSIZE makes write() fail with EFBIG for root as for anyone (Python ignores
    # SIGXFSZ): the temp file is created, written in part, and must be removed
    script = (
        "import resource, sys\n"
        "from pathlib import Path\n"
        "from shadow.objectstore import LocalStore\n"
        "from shadow.errors import StoreError\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (1000, resource.RLIM_INFINITY))\n"
        "try:\n"
        f"    LocalStore(Path(sys.argv[1]), 'w').put({KEY!r}, b'x' * 17000)\n"
        "except StoreError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert "cannot write" in done.stdout and "File too large" in done.stdout, done.stderr
    assert _temp_files(tmp_path) == [] and not (tmp_path / KEY).exists()


def test_a_worker_sweeps_the_temp_files_it_owns_and_no_others(tmp_path: Path) -> None:
    folder = tmp_path / "predictions" / "date=2026-01-01"
    folder.mkdir(parents=True)
    host = temp_tag(socket.gethostname())
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    ).stdout.strip()
    names = {
        ".tmp-worker-a.abc123": True,  # an earlier run of this worker_id
        f".tmp-{host}-{dead}.x1": True,  # a process of this host that no longer runs
        f".tmp-{host}-{os.getpid()}.x2": False,  # a live process (this one)
        ".tmp-other-host-1.x3": False,  # another worker's, recent
        ".tmp-old.x4": True,  # anybody's, older than STALE_TEMP_SECONDS
    }
    for name in names:
        (folder / name).write_bytes(b"partial")
    old = time.time() - STALE_TEMP_SECONDS - 60
    os.utime(folder / ".tmp-old.x4", (old, old))
    (folder / "kept.parquet").write_bytes(b"an object")
    assert LocalStore(tmp_path, "worker-a").sweep_temp() == 3
    left = {p.name for p in folder.iterdir()}
    assert left == {n for n, gone in names.items() if not gone} | {"kept.parquet"}


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _Error:
    def __init__(self, name: str, fatal: bool = False) -> None:
        self._name, self._fatal = name, fatal

    def name(self) -> str:
        return self._name

    def fatal(self) -> bool:
        return self._fatal

    def retriable(self) -> bool:
        return False

    def str(self) -> str:
        return f"{self._name}: 127.0.0.1:9092/1: Connect failed"


def test_librdkafka_reconnects_are_warnings_once_per_interval_with_a_count(caplog) -> None:
    clock = _Clock()
    log = KafkaLog(logging.getLogger("test.librdkafka"), interval=30, clock=clock)
    with caplog.at_level(logging.DEBUG, logger="test.librdkafka"):
        for second in range(15):  # a 15 s broker halt: a burst every second
            clock.now = float(second)
            for _ in range(10):
                log.log(40, "%s [%s] %s", "FAIL", "rdkafka#consumer-1", "Connection refused")
                log.error(_Error("_TRANSPORT"))
            log.error(_Error("_ALL_BROKERS_DOWN"))
        log.error(_Error("_FATAL", fatal=True))
        clock.now = 31.0
        log.tick()
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert [level for level, _ in lines].count("ERROR") == 1  # only the fatal one
    assert len(lines) == 7  # first + summary for FAIL, _TRANSPORT, _ALL_BROKERS_DOWN; fatal
    assert (
        "WARNING",
        "librdkafka FAIL: 149 more like it in 30s, the last: "
        "rdkafka#consumer-1: Connection refused",
    ) in lines


def test_the_watchdog_ends_only_runs_past_their_deadline_and_all_at_shutdown() -> None:
    watchdog = RunWatchdog()
    with watchdog.guard(0.05) as short, watchdog.guard(60) as long:
        time.sleep(0.3)
        assert short.ended == "deadline" and short.options.terminate
        assert long.ended is None and not long.options.terminate
        assert watchdog.terminate_all() == 2
        assert long.ended == "shutdown" and long.options.terminate


def test_a_signal_stops_gracefully_and_a_second_one_ends_the_process_now() -> None:
    stopped = threading.Event()
    forced: list[str] = []

    class Recorded(Shutdown):
        def force(self, why: str) -> None:
            forced.append(why)

    shutdown = Recorded(stopped.set, threading.Event(), seconds=0.2)
    shutdown.signalled(signal.SIGTERM)
    assert stopped.is_set() and forced == []
    time.sleep(0.5)
    assert forced == ["worker.shutdown_seconds passed"]
    shutdown.signalled(signal.SIGINT)
    assert forced[-1] == "a second SIGINT"
