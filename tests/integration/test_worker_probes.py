"""/livez and /readyz of real workers against the test broker, and the lag gauge of a worker
that cannot commit."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from typing import Any

import pytest
from worker_support import AmountScorer, WorkerThread, envelopes, produce, static_candidates
from worker_support import wait_until as wait_for

from consumers.http import WorkerHttp
from consumers.probes import WorkerProbes
from consumers.worker import ShadowWorker
from shadow.errors import StoreError

pytestmark = pytest.mark.integration

WORKER = {"flush_seconds": 0.5, "http_port": 0, "reload_seconds": 3600}


def probe(port: int, path: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def served(worker: ShadowWorker) -> WorkerHttp:
    probes = WorkerProbes(worker)
    http = WorkerHttp(
        0, worker.metrics.text, worker.health, worker.models, probes.liveness, probes.readiness
    )
    http.start()
    return http


class GatedScorer(AmountScorer):
    """Scores like AmountScorer, but its first batch waits until the test opens the gate."""

    def __init__(self, model_id: str) -> None:
        super().__init__(model_id)
        self.entered = threading.Event()
        self.gate = threading.Event()

    def score(self, batch: list) -> Any:
        self.entered.set()
        self.gate.wait(60)
        return super().score(batch)


def test_two_workers_on_one_partition_are_both_ready_one_of_them_idle(
    kafka_bootstrap: str, unique_topic: Any, unique_group: str, settings_for: Any
) -> None:
    topic = unique_topic(1)
    settings = settings_for(kafka={"topic": topic}, worker={**WORKER, "group_id": unique_group})
    workers = [ShadowWorker(settings, static_candidates(settings)) for _ in range(2)]
    servers = [served(w) for w in workers]
    try:
        status, report = probe(servers[0].port, "/readyz")
        assert status == 503 and report["member"] is False  # not in the group yet
        assert probe(servers[0].port, "/livez")[0] == 200
        threads = [WorkerThread(w).start() for w in workers]
        wait_for(lambda: all(probe(s.port, "/readyz")[0] == 200 for s in servers), 60, "both ready")
        reports = [probe(s.port, "/readyz")[1] for s in servers]
        assert sorted(len(r["partitions"]) for r in reports) == [0, 1]  # one idle member
        assert all(r["member"] and r["healthy"] for r in reports)
        assert all(probe(s.port, "/healthz")[0] == 200 for s in servers)
        threads[0].stop()
        assert probe(servers[0].port, "/readyz")[0] == 503  # left the group
        threads[1].stop()
    finally:
        for server in servers:
            server.stop()


def test_livez_fails_while_the_loop_is_wedged_and_recovers(
    kafka_bootstrap: str, unique_topic: Any, unique_group: str, settings_for: Any
) -> None:
    topic = unique_topic(1)
    conf = {**WORKER, "group_id": unique_group, "liveness_seconds": 1.0}
    settings = settings_for(kafka={"topic": topic}, worker=conf)
    gated = GatedScorer("gated@1")
    worker = ShadowWorker(settings, static_candidates(settings, gated))
    server = served(worker)
    thread = WorkerThread(worker).start()
    try:
        produce(kafka_bootstrap, topic, envelopes(10))
        assert gated.entered.wait(60), "the worker never scored"
        wait_for(lambda: probe(server.port, "/livez")[0] == 503, 10, "livez 503 while wedged")
        _status, report = probe(server.port, "/livez")
        assert report["seconds_since_turn"] > 1.0
        gated.gate.set()
        wait_for(lambda: probe(server.port, "/livez")[0] == 200, 10, "livez 200 again")
    finally:
        gated.gate.set()
        thread.stop()
        server.stop()


class DownStore:
    """An object store whose every write fails (the worker pauses and commits nothing)."""

    def put(self, key: str, data: bytes) -> None:
        raise StoreError("s3://down", "connection refused (on purpose)")

    def get(self, key: str) -> bytes:
        raise StoreError("s3://down", "connection refused (on purpose)")

    def exists(self, key: str) -> bool:
        return False

    def list(self, prefix: str = "") -> list[str]:
        return []

    def delete(self, key: str) -> None:
        raise StoreError("s3://down", "connection refused (on purpose)")

    def arrow(self) -> Any:
        raise StoreError("s3://down", "no filesystem (on purpose)")


def test_lag_grows_while_nothing_can_be_committed(
    kafka_bootstrap: str, unique_topic: Any, unique_group: str, settings_for: Any
) -> None:
    """The lag alert needs a gauge that moves without commits: it is read from the broker."""
    topic = unique_topic(2)
    settings = settings_for(kafka={"topic": topic}, worker={**WORKER, "group_id": unique_group})
    worker = ShadowWorker(settings, static_candidates(settings), store=DownStore())
    thread = WorkerThread(worker).start()

    def lag() -> float:
        gauge = worker.metrics.commit_lag
        return sum(gauge.labels(topic, str(p))._value.get() for p in range(2))

    try:
        wait_for(lambda: worker.assigned == {0, 1}, 60, "both partitions assigned")
        produce(kafka_bootstrap, topic, envelopes(400))
        wait_for(lambda: worker.paused == {0, 1}, 60, "both partitions paused")
        wait_for(lambda: lag() == 400, 30, "a lag of 400 with nothing committed")
        produce(kafka_bootstrap, topic, envelopes(100, seed=2))
        wait_for(lambda: lag() == 500, 30, "the lag growing to 500")
    finally:
        thread.stop()
