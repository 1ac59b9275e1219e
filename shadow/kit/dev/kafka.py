"""LocalKafka - a single-node Apache Kafka (KRaft) from the official Maven jars."""

from __future__ import annotations

import base64
import logging
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

from shadow.errors import DependencyMissing, ServiceError
from shadow.kit.dev.kafka_files import LOG4J, POM, server_properties
from shadow.kit.dev.process import (
    ServiceState,
    free_port,
    log_tail,
    pid_alive,
    port_open,
    read_state,
    spawn,
    stop_pid,
    wait_until,
    write_state,
)

logger = logging.getLogger(__name__)

LOG4J_VERSION = "2.24.3"
HEAP = ["-Xms128m", "-Xmx512m", "-XX:+UseG1GC", "-XX:TieredStopAtLevel=1"]


class LocalKafka:
    """One broker+controller on 127.0.0.1, its jars cached once, its state in ``run_dir``.

    With ``sasl_users`` ({user: password}) it also listens for SASL_PLAINTEXT clients (PLAIN)
    on a second port, ``sasl_bootstrap()``: a loopback stand-in for a secured cluster.
    """

    def __init__(
        self,
        version: str,
        home: Path,
        run_dir: Path | None = None,
        sasl_users: dict[str, str] | None = None,
    ) -> None:
        self.version = version
        self.sasl_users = dict(sasl_users or {})
        self.libs = home / f"kafka-{version}" / "libs"
        self.run_dir = run_dir or home / "run" / "kafka"
        self.state_file = self.run_dir / "state.json"
        self.log_file = self.run_dir / "server.log"

    def status(self) -> ServiceState:
        state = read_state(self.state_file) or {}
        pid = int(state.get("pid", 0) or 0)
        port = int(state.get("port", 0) or 0)
        running = pid_alive(pid) and port > 0 and port_open(port)
        return ServiceState(running, f"127.0.0.1:{port}" if port else "", pid)

    def start(self, port: int | None = None, timeout: float = 90.0) -> ServiceState:
        """Resolve the jars if needed, format KRaft storage, start, wait for metadata."""
        current = self.status()
        if current.running:
            return current
        self._stop_stale(current)
        java = check_java()
        self.ensure_jars()
        port = port or free_port()
        controller = free_port()
        sasl_port = free_port() if self.sasl_users else 0
        config = self._write_config(port, controller, sasl_port)
        self._format(java, config)
        argv = [
            java,
            *HEAP,
            *self._jvm_props(),
            "-cp",
            f"{self.libs}/*",
            "kafka.Kafka",
            str(config),
        ]
        pid = spawn(argv, self.run_dir / "stdout.log")
        state = {"pid": pid, "port": port, "version": self.version, "sasl_port": sasl_port}
        write_state(self.state_file, state)
        bootstrap = f"127.0.0.1:{port}"
        wait_until(lambda: broker_answers(bootstrap), pid, timeout, "kafka", self.log_file)
        logger.info("kafka %s ready at %s (pid %d)", self.version, bootstrap, pid)
        return ServiceState(True, bootstrap, pid)

    def sasl_bootstrap(self) -> str:
        """host:port of the SASL_PLAINTEXT listener ("" without sasl_users)."""
        state = read_state(self.state_file) or {}
        port = int(state.get("sasl_port", 0) or 0)
        return f"127.0.0.1:{port}" if port else ""

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM, SIGKILL after `grace` seconds, then remove the broker's state."""
        state = self.status()
        stop_pid(state.pid, grace)
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def halt(self, grace: float = 20.0) -> None:
        """Stop the broker but keep its data and port, so `resume()` brings the same one back."""
        stop_pid(self.status().pid, grace)

    def resume(self, timeout: float = 90.0) -> ServiceState:
        """Start a halted broker again on its old port with its old data."""
        state = read_state(self.state_file)
        if not state:
            raise ServiceError("kafka", "nothing to resume: the broker was never started", "")
        port = int(state["port"])
        argv = [
            check_java(),
            *HEAP,
            *self._jvm_props(),
            "-cp",
            f"{self.libs}/*",
            "kafka.Kafka",
            str(self.run_dir / "server.properties"),
        ]
        pid = spawn(argv, self.run_dir / "stdout.log")
        write_state(self.state_file, {**state, "pid": pid})
        bootstrap = f"127.0.0.1:{port}"
        wait_until(lambda: broker_answers(bootstrap), pid, timeout, "kafka", self.log_file)
        return ServiceState(True, bootstrap, pid)

    def ensure_jars(self) -> Path:
        """Resolve org.apache.kafka:kafka_2.13 and its runtime dependencies with Maven, once."""
        if (self.libs / ".complete").exists():
            return self.libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise DependencyMissing(
                "mvn (Apache Maven)", "install it, e.g. `apt-get install maven`"
            )
        work = self.libs.parent / f".resolve-{uuid.uuid4().hex[:8]}"
        work.mkdir(parents=True)
        (work / "pom.xml").write_text(POM.format(version=self.version, log4j=LOG4J_VERSION))
        cmd = [
            mvn,
            "-q",
            "-B",
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={work / 'libs'}",
        ]
        done = subprocess.run(cmd, cwd=work, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            shutil.rmtree(work, ignore_errors=True)
            tail = " / ".join((done.stdout + done.stderr).strip().splitlines()[-5:])
            raise ServiceError("kafka", f"Maven could not resolve kafka_2.13:{self.version}", tail)
        (work / "libs" / ".complete").touch()
        # another process may have finished first: keep its copy, a running broker may use it
        if not (self.libs / ".complete").exists():
            shutil.rmtree(self.libs, ignore_errors=True)
            (work / "libs").rename(self.libs)
        shutil.rmtree(work, ignore_errors=True)
        return self.libs

    def _write_config(self, port: int, controller: int, sasl_port: int = 0) -> Path:
        shutil.rmtree(self.run_dir, ignore_errors=True)
        self.run_dir.mkdir(parents=True)
        (self.run_dir / "log4j2.properties").write_text(LOG4J.format(log=self.log_file))
        config = self.run_dir / "server.properties"
        logs = self.run_dir / "data"
        config.write_text(server_properties(port, controller, logs, sasl_port, self.sasl_users))
        return config

    def _jvm_props(self) -> list[str]:
        return [
            f"-Dlog4j2.configurationFile={self.run_dir / 'log4j2.properties'}",
            "-Djava.awt.headless=true",
        ]

    def _format(self, java: str, config: Path) -> None:
        cluster_id = new_cluster_id()
        cmd = [
            java,
            *self._jvm_props(),
            "-cp",
            f"{self.libs}/*",
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={cluster_id}",
            "-c",
            str(config),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ServiceError("kafka", "formatting KRaft storage failed", done.stderr[-500:])

    def _stop_stale(self, state: ServiceState) -> None:
        if state.pid and pid_alive(state.pid):
            logger.warning("kafka pid %d is not answering; stopping it", state.pid)
            stop_pid(state.pid, grace=5)


def check_java() -> str:
    """Path of a java 17+ binary, or DependencyMissing naming what to install."""
    java = shutil.which("java")
    how = "install a Java 17+ runtime, e.g. `apt-get install openjdk-17-jre-headless`"
    if java is None:
        raise DependencyMissing("java (17 or newer)", how)
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    match = re.search(r'version "(\d+)', out)
    if match is None or int(match.group(1)) < 17:
        raise DependencyMissing("java 17 or newer", how)
    return java


def broker_answers(bootstrap: str, timeout: float = 2.0) -> bool:
    """True when the broker answers a metadata request."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    try:
        metadata = admin.list_topics(timeout=timeout)
    except Exception:  # noqa: BLE001 - any failure means "not yet"
        return False
    return bool(metadata.brokers)


def wait_for_broker(bootstrap: str, timeout: float = 60.0) -> None:
    """Block until the broker answers (e.g. after a restart in a test)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if broker_answers(bootstrap):
            return
        time.sleep(0.3)
    raise ServiceError("kafka", f"{bootstrap} did not answer within {timeout:.0f}s", "")


def tail(kafka: LocalKafka) -> str:
    return log_tail(kafka.log_file)


def new_cluster_id() -> str:
    """A KRaft cluster id as Kafka makes them: a random UUID in URL-safe base64, never starting
    with "-" (a command line would read it as an option; Kafka's Uuid.randomUuid skips those)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id
