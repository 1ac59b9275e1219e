"""DemoStack - the broker and worker processes a demo run starts, and stops even on Ctrl-C."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from shadow.errors import ServiceError
from shadow.kit.dev.kafka import LocalKafka
from shadow.kit.dev.process import free_port, stop_pid
from shadow.settings import Settings

logger = logging.getLogger(__name__)


class DemoStack:
    """Starts what the run needs (a local broker unless one is configured, N workers)."""

    def __init__(self, settings: Settings, run_dir: Path) -> None:
        self.settings = settings
        self.run_dir = run_dir
        self.kafka: LocalKafka | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.ports: list[int] = []

    def bootstrap(self) -> str:
        """The configured brokers, else a local broker of this run's own."""
        if self.settings.kafka.bootstrap_servers:
            return self.settings.kafka.bootstrap_servers
        k = self.settings.kafka
        self.kafka = LocalKafka(k.dev_version, k.dev_home, self.run_dir / "kafka")
        return self.kafka.start().bootstrap

    def start_workers(self, count: int, env: dict[str, str], config: Path | None) -> None:
        """`count` worker processes in one consumer group, each with its own HTTP port."""
        argv = [sys.executable, "-m", "shadow", "worker"]
        if config is not None:
            argv += ["--config", str(config)]
        for i in range(count):
            port = free_port()
            worker_env = {
                **os.environ,
                **env,
                "SHADOW__WORKER__HTTP_PORT": str(port),
                "SHADOW__WORKER__WORKER_ID": f"demo-worker-{i + 1}",
            }
            log = open(self.run_dir / f"worker-{i + 1}.log", "ab")  # noqa: SIM115 - child keeps it
            proc = subprocess.Popen(
                argv, env=worker_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
            log.close()
            self.workers.append(proc)
            self.ports.append(port)

    def wait_workers_ready(self, timeout: float = 60.0) -> None:
        """Until every worker's /healthz answers 200 (its models score their canaries)."""
        deadline = time.monotonic() + timeout
        pending = set(range(len(self.workers)))
        while pending and time.monotonic() < deadline:
            for i in sorted(pending):
                if self.workers[i].poll() is not None:
                    raise ServiceError(f"worker {i + 1}", "exited during start", self._tail(i))
                if _healthy(self.ports[i]):
                    pending.discard(i)
            time.sleep(0.3)
        if pending:
            raise ServiceError("workers", f"not healthy after {timeout:.0f}s", self._tail(0))

    def wait_models(self, wanted: set[str], timeout: float = 60.0) -> None:
        """Until every worker has loaded exactly `wanted` (after a reload of the shadow set)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(_loaded(port) == wanted for port in self.ports):
                return
            time.sleep(0.3)
        logger.warning("the workers did not load exactly %s within %.0fs", sorted(wanted), timeout)

    def stop_workers(self, grace: float = 30.0) -> None:
        """SIGTERM: each worker flushes, commits and leaves the group; SIGKILL after `grace`."""
        for proc in self.workers:
            stop_pid(proc.pid, grace)
            proc.wait()
        self.workers.clear()

    def close(self) -> None:
        self.stop_workers()
        if self.kafka is not None:
            self.kafka.stop()
            self.kafka = None

    def _tail(self, i: int) -> str:
        lines = (self.run_dir / f"worker-{i + 1}.log").read_text(errors="replace").splitlines()
        return " / ".join(lines[-3:])


def _loaded(port: int) -> set[str] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/models", timeout=1) as response:
            return {str(model["model_id"]) for model in json.loads(response.read())}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False
