"""LocalS3 - moto's S3 API server on 127.0.0.1, for tests and local use."""

from __future__ import annotations

import logging
import shutil
import sys
import urllib.error
import urllib.request
from pathlib import Path

from shadow.errors import DependencyMissing
from shadow.kit.dev.process import (
    ServiceState,
    free_port,
    pid_alive,
    read_state,
    spawn,
    stop_pid,
    wait_until,
    write_state,
)

logger = logging.getLogger(__name__)


class LocalS3:
    """An S3 API server (moto) whose state lives in ``run_dir``; `status().bootstrap` is its URL."""

    def __init__(self, home: Path, run_dir: Path | None = None) -> None:
        self.run_dir = run_dir or home / "run" / "s3"
        self.state_file = self.run_dir / "state.json"
        self.log_file = self.run_dir / "server.log"

    def status(self) -> ServiceState:
        state = read_state(self.state_file) or {}
        pid = int(state.get("pid", 0) or 0)
        port = int(state.get("port", 0) or 0)
        url = f"http://127.0.0.1:{port}" if port else ""
        return ServiceState(pid_alive(pid) and bool(url) and s3_answers(url), url, pid)

    def start(self, port: int | None = None, timeout: float = 30.0) -> ServiceState:
        current = self.status()
        if current.running:
            return current
        stop_pid(current.pid, grace=2)
        _check_moto()
        port = port or free_port()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
        pid = spawn(argv, self.log_file)
        write_state(self.state_file, {"pid": pid, "port": port})
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: s3_answers(url), pid, timeout, "s3", self.log_file)
        logger.info("s3 api server ready at %s (pid %d)", url, pid)
        return ServiceState(True, url, pid)

    def halt(self) -> None:
        """Stop the server but remember its port, so `resume()` serves the same URL (empty)."""
        stop_pid(self.status().pid, grace=5)

    def resume(self, timeout: float = 30.0) -> ServiceState:
        state = read_state(self.state_file) or {}
        return self.start(port=int(state.get("port", 0) or 0) or None, timeout=timeout)

    def stop(self) -> None:
        stop_pid(self.status().pid, grace=5)
        shutil.rmtree(self.run_dir, ignore_errors=True)


def s3_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return response.status < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except OSError:
        return False


def _check_moto() -> None:
    try:
        import moto.server  # noqa: F401
    except ImportError:
        raise DependencyMissing("moto's S3 server", "pip install 'moto[server]'") from None
