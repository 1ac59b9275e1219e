"""Bench: what one worker process costs, for sizing - transactions per CPU second, and memory.

    python -m bench.worker_footprint --json [--txns N] [--config FILE]

Runs the real `python -m shadow worker` (default worker settings, HTTP included) as its own
process, with the reference models lr, gbdt and mlp in shadow, against a 3-partition topic:
it waits for /readyz (group joined, models loaded and canary-checked) and reads the idle
memory; then N transactions are produced and the worker's own CPU time (utime + stime from
/proc) until every offset is committed gives ``tps_per_core``; ``peak_rss_mb`` is the process's
high-water mark (VmHWM). Starts a broker and an S3 API server unless the settings name existing
ones; stops what it started. Prints ONE JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from bench.worker_throughput import PARTITIONS, encoded, produce, register_models, services


def proc_status(pid: int, field: str) -> float:
    """A /proc/PID/status figure in MiB (VmRSS, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError):
        return False


def committed_all(settings: Any) -> bool:
    from confluent_kafka import Consumer, TopicPartition

    from shadow.clients import base_config

    config = {**base_config(settings.kafka), "group.id": settings.worker.group_id}
    consumer = Consumer(config)
    try:
        tps = [TopicPartition(settings.kafka.topic, p) for p in range(PARTITIONS)]
        done = {tp.partition: tp.offset for tp in consumer.committed(tps, timeout=10)}
        ends = {p: consumer.get_watermark_offsets(tps[p], timeout=10)[1] for p in range(PARTITIONS)}
    finally:
        consumer.close()
    return done == ends and sum(ends.values()) > 0


def start_worker(settings: Any, folder: Path, port: int) -> subprocess.Popen[bytes]:
    data = settings.model_dump(mode="json")
    data["worker"].update(
        {"http_port": port, "flush_records": 20_000, "flush_seconds": 10, "batch_size": 2000}
    )
    config = folder / "worker.yaml"
    config.write_text(yaml.safe_dump(data))
    log = (folder / "worker.log").open("wb")
    command = [sys.executable, "-m", "shadow", "worker", "--config", str(config)]
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


def measure(settings: Any, folder: Path, txns: int) -> dict[str, float]:
    from shadow.clients import ensure_topic
    from shadow.kit.dev.process import free_port

    ensure_topic(settings.kafka, settings.kafka.topic, PARTITIONS)
    records = encoded(txns)
    port = free_port()
    worker = start_worker(settings, folder, port)
    try:
        while not ready(port):
            if worker.poll() is not None:
                raise SystemExit((folder / "worker.log").read_text()[-3000:])
            time.sleep(0.2)
        idle_mb, cpu_before, began = (
            proc_status(worker.pid, "VmRSS"),
            cpu_seconds(worker.pid),
            time.perf_counter(),
        )
        produce(settings, records)
        while not committed_all(settings):
            time.sleep(0.5)
        cpu = cpu_seconds(worker.pid) - cpu_before
        wall = time.perf_counter() - began
        peak_mb = proc_status(worker.pid, "VmHWM")
    finally:
        worker.terminate()
        worker.wait(60)
    return {
        "idle_rss_mb": idle_mb,
        "peak_rss_mb": peak_mb,
        "cpu_seconds": cpu,
        "wall_seconds": wall,
    }


def main(argv: list[str] | None = None) -> None:
    from shadow.settings import load_settings

    parser = argparse.ArgumentParser(prog="python -m bench.worker_footprint")
    parser.add_argument("--json", action="store_true", help="print one JSON line (always)")
    parser.add_argument("--txns", type=int, default=200_000)
    parser.add_argument("--config", default=None)
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="shadow-bench-") as tmp,
        services(load_settings(args.config), Path(tmp)) as settings,
    ):
        register_models(settings)
        figures = measure(settings, Path(tmp), args.txns)
    result = {
        "txns": args.txns,
        "models": 3,
        "partitions": PARTITIONS,
        "tps_per_core": round(args.txns / figures["cpu_seconds"]),
        "tps_wall": round(args.txns / figures["wall_seconds"]),
        "cpu_seconds": round(figures["cpu_seconds"], 2),
        "idle_rss_mb": round(figures["idle_rss_mb"]),
        "peak_rss_mb": round(figures["peak_rss_mb"]),
        "note": "one `python -m shadow worker` process, default flush settings; tps_per_core "
        "= transactions / the worker's own CPU seconds; tps_wall includes producing the backlog "
        "on the same 2 cores",
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
