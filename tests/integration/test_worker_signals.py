"""SIGTERM to a real worker process in every state it can be in - consuming, paused by a store
that refuses writes, facing an unreachable broker (at start and mid-run), scoring a runaway
model - and it exits within worker.shutdown_seconds; nothing it consumed is lost."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest
import yaml
from worker_support import (
    all_committed,
    assert_exactly_once,
    committed,
    envelopes,
    produce,
    read_objects,
    rows,
    wait_until,
)

from shadow.envelope import LiveScore, encode, make_envelope
from shadow.kit.dev.kafka import LocalKafka
from shadow.kit.reference_models import write_tiny_model
from shadow.objectstore import open_store
from shadow.registry import ModelRegistry
from shadow.settings import Settings, load_settings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SHUTDOWN_S = 8.0
BOUND_S = SHUTDOWN_S + 7.0
"""SIGTERM to exit: the worker's own bound plus the interpreter's exit, on a loaded machine."""


def _config(tmp_path: Path, bootstrap: str, topic: str, group: str, **worker: object) -> Path:
    config = {
        "kafka": {"bootstrap_servers": bootstrap, "topic": topic},
        "worker": {
            "group_id": group,
            "flush_records": 500,
            "flush_seconds": 1.0,
            "batch_size": 200,
            "http_port": 0,
            "shutdown_seconds": SHUTDOWN_S,
            **worker,
        },
        "store": {"uri": str(tmp_path / "store")},
        "registry": {
            "url": f"sqlite:///{tmp_path / 'registry.db'}",
            "model_cache": str(tmp_path / "cache"),
        },
        "log": {"level": "INFO"},
    }
    path = tmp_path / f"worker-{group}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _register(settings: Settings, folder: Path, *models: tuple[str, str]) -> None:
    registry = ModelRegistry.from_settings(settings)
    for name, kind in models:
        card = registry.register(write_tiny_model(folder / f"{name}.onnx", kind), name, "1")
        registry.transition(card.model_id, "shadow", "test", "signals")
    registry.close()


class Worker:
    """A worker process; its log comes through a pipe (RLIMIT_FSIZE limits files, not pipes)."""

    def __init__(self, config: Path, log: Path) -> None:
        self.log = log
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "shadow", "worker", "--config", str(config)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.log.open("ab") as out:
            for line in self.process.stdout:
                self.lines.append(line.decode(errors="replace"))
                out.write(line)

    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, line: str, timeout: float = 60) -> None:
        wait_until(lambda: line in self.text(), timeout, f"{line!r} in the worker's log")

    def terminate(self) -> tuple[int, float]:
        """SIGTERM; returns the exit code and how long the exit took."""
        assert self.process.poll() is None, self.text()[-3000:]
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(BOUND_S + 30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"no exit after SIGTERM: {self.text()[-3000:]}") from None
        took = time.monotonic() - started
        print(f"{self.log.stem}: SIGTERM -> exit {code} after {took:.1f}s (bound {BOUND_S:.0f}s)")
        return code, took


def test_sigterm_while_consuming_flushes_commits_and_exits(
    kafka_bootstrap, unique_topic, unique_group, tmp_path: Path
) -> None:
    topic = unique_topic(2)
    config = _config(tmp_path, kafka_bootstrap, topic, unique_group)
    _register(load_settings(config), tmp_path, ("cols", "columns"))
    records = envelopes(3000, seed=51)
    produce(kafka_bootstrap, topic, records[:1500])
    worker = Worker(config, tmp_path / "consuming.log")
    worker.wait_for("stored and committed")
    produce(kafka_bootstrap, topic, records[1500:])
    code, took = worker.terminate()
    assert code == 0 and took < BOUND_S, (code, took, worker.text()[-2000:])
    assert "left the group" in worker.text()
    table = rows(list(read_objects(open_store(load_settings(config).store)).values()))
    stored = set(table.column("txn_id").to_pylist())
    ends = committed(kafka_bootstrap, unique_group, topic, 2)
    assert sum(max(0, o) for o in ends.values()) == len(stored)  # committed = stored, no more


def _refuse_writes(pid: int, limit: int) -> None:
    """The worker's writes beyond `limit` bytes fail with EFBIG (for root too)."""
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))


def test_sigterm_while_paused_by_a_store_refusing_writes(
    kafka_bootstrap, unique_topic, unique_group, tmp_path: Path
) -> None:
    topic = unique_topic(2)
    config = _config(tmp_path, kafka_bootstrap, topic, unique_group)
    settings = load_settings(config)
    _register(settings, tmp_path, ("cols", "columns"))
    records = envelopes(2000, seed=53)
    worker = Worker(config, tmp_path / "paused.log")
    worker.wait_for("subscribed to")
    _refuse_writes(worker.process.pid, 4096)
    produce(kafka_bootstrap, topic, records)
    wait_until(lambda: "flush failed, paused" in worker.text(), 60, "a paused partition")
    assert committed(kafka_bootstrap, unique_group, topic, 2) == {0: -1001, 1: -1001}
    assert worker.process.poll() is None, "the worker died on a store that refuses writes"
    code, took = worker.terminate()
    assert code == 0 and took < BOUND_S, (code, took, worker.text()[-2000:])
    assert "left uncommitted for replay" in worker.text()

    again = Worker(config, tmp_path / "recovered.log")  # the store takes writes again
    wait_until(all_committed(kafka_bootstrap, unique_group, topic, 2), 90, "all committed")
    again.terminate()
    store = open_store(settings.store)
    table = rows(list(read_objects(store).values()))
    assert assert_exactly_once(table, {k.decode() for k, _ in records}, {"cols@1", "fraud@7"}) == 0
    assert not [p for p in (tmp_path / "store").rglob(".tmp-*")], "temp files left behind"


def test_sigterm_with_an_unreachable_broker_at_start(unique_group, tmp_path: Path) -> None:
    config = _config(tmp_path, "127.0.0.1:9", "nowhere", unique_group)  # port 9: discard
    _register(load_settings(config), tmp_path, ("cols", "columns"))
    worker = Worker(config, tmp_path / "unreachable.log")
    time.sleep(6)  # creating the DLQ topic waits for a broker that never answers
    code, took = worker.terminate()
    assert code == 0 and took < BOUND_S, (code, took, worker.text()[-2000:])
    librdkafka = [line for line in worker.text().splitlines() if "librdkafka" in line]
    assert not [line for line in librdkafka if " ERROR " in line], librdkafka[:5]
    assert len(librdkafka) <= 6, librdkafka  # first lines of each kind; no repeats


def test_sigterm_with_the_broker_gone_mid_run_then_nothing_lost(
    unique_group, tmp_path: Path
) -> None:
    defaults = Settings().kafka
    kafka = LocalKafka(defaults.dev_version, defaults.dev_home, tmp_path / "kafka")
    bootstrap = kafka.start().bootstrap
    try:
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic("gone", 2, 1)])["gone"].result(30)
        # nothing flushed before the broker goes: the buffers hold every record
        config = _config(
            tmp_path, bootstrap, "gone", unique_group, flush_seconds=30.0, flush_records=5000
        )
        _register(load_settings(config), tmp_path, ("cols", "columns"))
        records = envelopes(1000, seed=57)
        produce(bootstrap, "gone", records)
        worker = Worker(config, tmp_path / "gone.log")
        wait_until(lambda: "assigned" in worker.text(), 60, "an assignment")
        time.sleep(3)  # consumed, buffered, not flushed (flush_seconds 30)
        kafka.halt()
        time.sleep(3)
        code, took = worker.terminate()
        assert code in (0, 3) and took < BOUND_S, (code, took, worker.text()[-2000:])
        kafka.resume()
        assert committed(bootstrap, unique_group, "gone", 2) == {0: -1001, 1: -1001}
        again = Worker(config, tmp_path / "gone-again.log")
        again.wait_for("subscribed to")
        wait_until(all_committed(bootstrap, unique_group, "gone", 2), 120, "all committed")
        again.terminate()
    finally:
        kafka.stop()
    table = rows(list(read_objects(open_store(load_settings(config).store)).values()))
    assert assert_exactly_once(table, {k.decode() for k, _ in records}, {"cols@1", "fraud@7"}) == 0
    assert " ERROR shadow.librdkafka" not in worker.text()


def test_sigterm_while_a_runaway_model_scores_then_its_deadline_unloads_it(
    kafka_bootstrap, unique_topic, unique_group, tmp_path: Path
) -> None:
    topic = unique_topic(1)
    # a deadline far away: only the signal can end this call
    config = _config(tmp_path, kafka_bootstrap, topic, unique_group, model_timeout_ms=600_000)
    settings = load_settings(config)
    _register(settings, tmp_path, ("cols", "columns"), ("loop", "runaway"))
    live = LiveScore("fraud@7", 0.2, "pass", 1.0)
    features = {"amount": 1e12, "device_risk": 0.1, "merchant_category": "5411"}
    runaway = [(b"r-1", encode(make_envelope("r-1", features, live, 1_767_225_600_000)))]
    produce(kafka_bootstrap, topic, runaway)
    worker = Worker(config, tmp_path / "runaway.log")
    worker.wait_for("subscribed to")
    time.sleep(5)  # the batch is in the Loop (about 1.5 us a trip: weeks for 1e12)
    code, took = worker.terminate()
    assert code == 0 and took < BOUND_S, (code, took, worker.text()[-2000:])
    assert "left for replay" in worker.text()
    assert committed(kafka_bootstrap, unique_group, topic, 1) == {0: -1001}

    # the next owner has a deadline: error rows for that model only, the commit goes on, and
    # max_model_failures overruns unload it with an event in the registry
    config = _config(
        tmp_path, kafka_bootstrap, topic, unique_group, model_timeout_ms=500, max_model_failures=1
    )
    again = Worker(config, tmp_path / "deadline.log")
    wait_until(all_committed(kafka_bootstrap, unique_group, topic, 1), 60, "committed")
    again.terminate()
    table = rows(list(read_objects(open_store(settings.store)).values()))
    errors = dict(
        zip(
            table.column("model_id").cast(pa.string()).to_pylist(),
            table.column("error").to_pylist(),
            strict=True,
        )
    )
    assert errors["cols@1"] is None and "worker.model_timeout_ms" in errors["loop@1"]
    registry = ModelRegistry.from_settings(settings)
    history = [e.reason for e in registry.history("loop@1")]
    registry.close()
    assert any("overran worker.model_timeout_ms" in reason for reason in history), history
