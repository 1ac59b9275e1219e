"""Bench: do worker processes add throughput when they join? One and two on the same backlog.

    python -m bench.worker_throughput --processes 1,2 --json [--txns N] [--partitions P]
        [--rounds R] [--consumer-config JSON]

One topic of ``--partitions`` partitions (default 4) is filled with N transactions (default
250,000); lr, gbdt and mlp are in shadow. Each round, on a new consumer group each time:

- ``1``: one `shadow worker` process drains the backlog;
- ``2``: two processes started together drain it (one fresh group, as a scaler would start them);
- ``join``: one process starts; once it consumed a quarter of the backlog a second one joins.

A drain is timed from the first record any worker consumed to the moment every partition's
committed offset reaches its end (so the time the group takes to settle counts).
``scaling_2_over_1`` is the median over rounds of (2-process rate / 1-process rate), each pair
run back to back. ``join_to_first_message_s`` is, for a worker joining a group that is
consuming, the time from its subscribe (its log line) to its first consumed record (its
/metrics, read every 20 ms); ``join_to_assigned_s`` to its first non-empty assignment.
Worker CPU is read from /proc (utime + stime) of the worker processes, each from its first
record on (start-up and model loading not counted); ``machine_busy`` is the share of both
cores busy during a drain (/proc/stat), beside the cores the workers, the broker + S3 server
and everything else on the machine (``other_jobs``: other people's work on a shared machine)
used; ``tps_consumed`` is the rate up to the last record consumed (without the wait of the
last flush, worker.flush_seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bench.worker_footprint import cpu_seconds
from bench.worker_throughput import BENCH_WORKER, encoded, produce, register_models, services

POLL_S = 0.02
"""How often a worker's /metrics is read until its first record (then every CHECK_S)."""
CHECK_S = 0.1
"""How often the group's committed offsets are read (and the workers' /metrics after their
first record): the bench's own load on the machine stays small."""


class WorkerProcess:
    """One `shadow worker`: its log lines stamped on arrival, its /metrics."""

    def __init__(self, settings: Any, folder: Path, name: str, consumer: dict[str, Any]) -> None:
        from shadow.kit.dev.process import free_port

        self.port = free_port()
        data = settings.model_dump(mode="json")
        data["worker"].update(BENCH_WORKER)
        data["worker"].update({"http_port": self.port, "worker_id": name})
        data["worker"]["consumer_config"] = {**data["worker"]["consumer_config"], **consumer}
        data["log"] = {"level": "INFO", "json_lines": True}
        config = folder / f"{name}.yaml"
        config.write_text(yaml.safe_dump(data))
        self.lines: list[tuple[float, str]] = []
        command = [sys.executable, "-m", "shadow", "worker", "--config", str(config)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.first_record_at: float | None = None
        self.consumed = 0.0

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append((time.time(), line))

    def poll(self) -> None:
        """Read consumed_total; note when the first record arrived."""
        try:
            url = f"http://127.0.0.1:{self.port}/metrics"
            with urllib.request.urlopen(url, timeout=1) as answer:
                text = answer.read().decode()
        except OSError:
            return
        for line in text.splitlines():
            if line.startswith("shadow_worker_consumed_total "):
                self.consumed = float(line.split()[1])
        if self.consumed and self.first_record_at is None:
            self.first_record_at = time.time()

    def logged(self, text: str, exclude: str | None = None) -> float | None:
        """When the first log line holding `text` (and not `exclude`) arrived."""
        for at, line in list(self.lines):
            if text in line and (exclude is None or exclude not in line):
                return at
        return None

    def cpu(self) -> float:
        return cpu_seconds(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def tail(self) -> str:
        return "".join(line for _, line in self.lines[-20:])


class GroupProgress:
    """Whether a group's committed offsets reached the end of every partition (one consumer
    kept open, asked every CHECK_S)."""

    def __init__(self, settings: Any, partitions: int) -> None:
        from confluent_kafka import Consumer, TopicPartition

        from shadow.clients import base_config

        config = {**base_config(settings.kafka), "group.id": settings.worker.group_id}
        self.consumer = Consumer(config)
        self.tps = [TopicPartition(settings.kafka.topic, p) for p in range(partitions)]
        self.ends = [self.consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in self.tps]

    def done(self) -> bool:
        committed = self.consumer.committed(self.tps, timeout=10)
        return [tp.offset for tp in committed] == self.ends

    def close(self) -> None:
        self.consumer.close()


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields[:8]) - idle) / tick, sum(fields[:8]) / tick


def service_pids(folder: Path, settings: Any) -> list[int]:
    """The broker and S3 server this bench started (their command lines name its folder or
    the S3 server's port)."""
    port = (settings.store.endpoint_url or "").rsplit(":", 1)[-1]
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            line = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        broker = "kafka.Kafka" in line and str(folder) in line
        s3 = "moto.server" in line and bool(port) and f" {port}" in line
        if broker or s3:
            pids.append(int(proc.name))
    return pids


def _cpu_of(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds(pid)
        except OSError:
            continue
    return total


def drain(settings: Any, folder: Path, args: argparse.Namespace, mode: str) -> dict[str, Any]:
    """One drain of the backlog by a new group: mode "1", "2" or "join"."""
    from bench.worker_throughput import _in_group

    group = _in_group(settings, f"{settings.kafka.topic}-{mode}-{time.time_ns()}")
    consumer = json.loads(args.consumer_config)
    workers = [WorkerProcess(group, folder, f"{mode}-a", consumer)]
    if mode == "2":
        workers.append(WorkerProcess(group, folder, f"{mode}-b", consumer))
    cpu_at_start: dict[int, float] = {}
    progress = GroupProgress(group, args.partitions)
    try:
        began = _wait_first_record(workers)
        cpu_at_start = {w.process.pid: w.cpu() for w in workers}
        machine, services_cpu = machine_cpu(), _cpu_of(args.service_pids)
        next_check, consumed_at = 0.0, None
        while True:
            for worker in workers:
                if worker.first_record_at is None or time.time() >= next_check:
                    worker.poll()
                if worker.first_record_at and worker.process.pid not in cpu_at_start:
                    cpu_at_start[worker.process.pid] = worker.cpu()  # start-up not counted
            if consumed_at is None and sum(w.consumed for w in workers) >= args.txns:
                consumed_at = time.time()
            if time.time() >= next_check:
                next_check = time.time() + CHECK_S
                if progress.done():
                    break
            if mode == "join" and len(workers) == 1 and workers[0].consumed >= args.txns / 4:
                workers.append(WorkerProcess(group, folder, f"{mode}-b", consumer))
            time.sleep(POLL_S)
        seconds = time.time() - began
        cpu = sum(w.cpu() - cpu_at_start.get(w.process.pid, 0.0) for w in workers)
        busy, total = (now - then for now, then in zip(machine_cpu(), machine, strict=True))
        services_cpu = _cpu_of(args.service_pids) - services_cpu
        for worker in workers:
            worker.poll()
    finally:
        progress.close()
        for worker in workers:
            worker.stop()
    out = _figures(workers, mode, args.txns, seconds, cpu)
    out["machine_busy"] = busy / total  # of every core: 1.0 is both cores busy all along
    out["workers_cores"] = cpu / seconds
    out["services_cores"] = services_cpu / seconds
    out["others_cores"] = busy / seconds - out["workers_cores"] - out["services_cores"]
    if consumed_at is not None:  # the rate without the last flush's wait (flush_seconds)
        out["tps_consumed"] = args.txns / (consumed_at - began)
    return out


def _wait_first_record(workers: list[WorkerProcess]) -> float:
    deadline = time.time() + 180
    while time.time() < deadline:
        for worker in workers:
            if worker.process.poll() is not None:
                raise SystemExit(f"worker exited:\n{worker.tail()}")
            worker.poll()
        firsts = [w.first_record_at for w in workers if w.first_record_at]
        if firsts:
            return min(firsts)
        time.sleep(POLL_S)
    raise SystemExit("no worker consumed anything in 180 s")


def _figures(
    workers: list[WorkerProcess], mode: str, txns: int, seconds: float, cpu: float
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "mode": mode,
        "tps": txns / seconds,
        "seconds": seconds,
        "worker_cpu_us_per_txn": cpu / txns * 1e6,
        "consumed": [w.consumed for w in workers],
        "commit_failures": [_count(w, "commit failed") for w in workers],
    }
    if len(workers) == 2:
        second = workers[1]
        joined = second.logged("subscribed to")
        assigned = second.logged('"assigned ', exclude="assigned nothing")
        if joined is not None and second.first_record_at is not None:
            out["join_to_first_message_s"] = second.first_record_at - joined
        if joined is not None and assigned is not None:
            out["join_to_assigned_s"] = assigned - joined
    return out


def _count(worker: WorkerProcess, text: str) -> int:
    return sum(1 for _, line in worker.lines if text in line)


def scaling(args: argparse.Namespace) -> dict[str, Any]:
    import tempfile

    from shadow.clients import ensure_topic
    from shadow.settings import load_settings

    if args.processes.replace(" ", "") != "1,2":
        raise SystemExit("--processes: only 1,2 is measured (one process, then two)")
    runs: list[dict[str, Any]] = []
    load = [os.getloadavg()[0]]
    with (
        tempfile.TemporaryDirectory(prefix="shadow-bench-") as tmp,
        services(load_settings(args.config), Path(tmp)) as settings,
    ):
        register_models(settings)
        args.service_pids = service_pids(Path(tmp), settings)
        ensure_topic(settings.kafka, settings.kafka.topic, args.partitions)
        produce(settings, encoded(args.txns))
        for _ in range(args.rounds):
            for mode in ("1", "2", "join"):
                runs.append(drain(settings, Path(tmp), args, mode))
                load.append(os.getloadavg()[0])
    return _scaling_summary(args, runs, load)


def _scaling_summary(
    args: argparse.Namespace, runs: list[dict[str, Any]], load: list[float]
) -> dict[str, Any]:
    def of(mode: str, name: str) -> list[float]:
        return [r[name] for r in runs if r["mode"] == mode and name in r]

    ratios = [two / one for one, two in zip(of("1", "tps"), of("2", "tps"), strict=True)]
    joins = of("join", "join_to_first_message_s")
    return {
        "txns": args.txns,
        "partitions": args.partitions,
        "rounds": args.rounds,
        "consumer_config": json.loads(args.consumer_config),
        "scaling_2_over_1": round(float(np.median(ratios)), 3),
        "tps_1": round(float(np.median(of("1", "tps")))),
        "tps_2": round(float(np.median(of("2", "tps")))),
        "tps_join": round(float(np.median(of("join", "tps")))),
        "join_to_first_message_s": round(float(np.median(joins)), 2) if joins else None,
        "runs_scaling_2_over_1": [round(x, 3) for x in ratios],
        "runs_tps_1": [round(x) for x in of("1", "tps")],
        "runs_tps_2": [round(x) for x in of("2", "tps")],
        "runs_tps_join": [round(x) for x in of("join", "tps")],
        "runs_join_to_first_message_s": [round(x, 2) for x in joins],
        "runs_join_to_assigned_s": [round(x, 2) for x in of("join", "join_to_assigned_s")],
        "runs_together_join_to_first_message_s": [
            round(x, 2) for x in of("2", "join_to_first_message_s")
        ],
        "runs_worker_cpu_us_per_txn": {
            mode: [round(x, 1) for x in of(mode, "worker_cpu_us_per_txn")]
            for mode in ("1", "2", "join")
        },
        "runs_consumed_per_worker": {
            mode: [[round(c) for c in r["consumed"]] for r in runs if r["mode"] == mode]
            for mode in ("2", "join")
        },
        "runs_commit_failures": {
            mode: [r["commit_failures"] for r in runs if r["mode"] == mode]
            for mode in ("1", "2", "join")
        },
        "runs_machine_busy": {
            mode: [round(x, 2) for x in of(mode, "machine_busy")] for mode in ("1", "2", "join")
        },
        "runs_workers_cores": {
            mode: [round(x, 2) for x in of(mode, "workers_cores")] for mode in ("1", "2", "join")
        },
        "runs_tps_consumed": {
            mode: [round(x) for x in of(mode, "tps_consumed")] for mode in ("1", "2", "join")
        },
        "runs_other_jobs_cores": {
            mode: [round(x, 2) for x in of(mode, "others_cores")] for mode in ("1", "2", "join")
        },
        "runs_broker_and_s3_cores": {
            mode: [round(x, 2) for x in of(mode, "services_cores")] for mode in ("1", "2", "join")
        },
        "service_pids_found": len(args.service_pids),
        "load_average_1min": [round(x, 2) for x in load],
    }
