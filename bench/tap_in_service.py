"""Bench: what each tap costs a live service's requests, not just the offer() call.

A stand-in live service: ``--threads`` request threads, Poisson arrivals at ``--rps`` requests/s
(open loop: a late request waits, and that wait counts). Each request parses its JSON body,
scores one transaction with the baseline reference model in ONNX Runtime (as the live service
does), offers it to the tap and answers in JSON. Request latency runs from the request's arrival
time to its answer. The same arrivals are served with no tap, with ``ShadowTap`` (the default
hand-off tap) and with ``InlineTap``, against the same broker, in ``--rounds`` interleaved
rounds, so the figures compare round by round (``*_p50_overhead``: a tap's p50 over the no-tap
p50 of the same round, minus 1; the median over rounds is reported, every round listed).

``--pin-broker``: the broker this bench starts is moved to core 1 with ``taskset -a`` (every
thread of the JVM: plain ``-p`` moves only its main thread), so its CPU stops competing with
the requests on core 0; what is left is the tap's own cost. ``--pin-service`` also keeps the
service on core 0 (one core for 4 request threads, ONNX and the tap: a harsher test).

``tap_cpu_us_per_sampled``: CPU time of the tap's own threads (ShadowTap's sender, the delivery
poller, librdkafka's threads; read from /proc/self/task/*/schedstat, in ns) per record the tap
took; InlineTap's encode runs in the request threads and shows in the request latency instead.
``--tap-config`` and ``--producer-config`` (JSON) override tap settings and librdkafka
properties, to measure linger, compression and the like one at a time.

Prints one JSON line: per tap, request latency p50/p99/p99.9 in microseconds, the process's CPU
seconds, the tap threads' CPU and the tap's counters.

    python -m bench.tap_in_service --json [--pin-broker] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import bench_broker, emit, with_kafka
from producers.inline import InlineTap
from producers.tap import ShadowTap
from shadow.clients import ensure_topic
from shadow.envelope import LiveScore
from shadow.kit.synthetic import TransactionGenerator, feature_dicts
from shadow.settings import load_settings

TAPS: dict[str, Callable[..., Any] | None] = {
    "none": None,
    "shadow": ShadowTap,
    "inline": InlineTap,
}
SERVICE_CORE, BROKER_CORE = 0, 1


class _Service:
    """One request: parse, score with the live model, offer to the tap, answer."""

    def __init__(self, scorer: Any, tap: Any) -> None:
        self.scorer = scorer
        self.offer = tap.offer if tap is not None else None

    def handle(self, txn_id: str, body: bytes) -> bytes:
        features = json.loads(body)
        scored = self.scorer.score_features([features])
        score = float(scored.scores[0])
        live = LiveScore("fraud@1", score, "alert" if score >= 0.5 else "pass", 0.1)
        if self.offer is not None:
            self.offer(txn_id, features, live)
        return json.dumps({"txn_id": txn_id, "score": score}).encode()


def _serve(service: _Service, arrivals: np.ndarray, bodies: list[bytes], part: int, of: int):
    """Serve every `of`-th request starting at `part`; returns their latencies in ns."""
    clock = time.perf_counter_ns
    start = clock()
    latencies = []
    for i in range(part, len(arrivals), of):
        due = start + int(arrivals[i])
        wait = due - clock()
        if wait > 0:
            time.sleep(wait / 1e9)
        service.handle(f"req-{i:09d}", bodies[i % len(bodies)])
        latencies.append(clock() - due)
    return latencies


def _run_one(service: _Service, arrivals: np.ndarray, bodies: list[bytes], threads: int):
    results: list[list[int]] = [[] for _ in range(threads)]
    ids: set[int] = set()

    def work(part: int) -> None:
        ids.add(threading.get_native_id())
        results[part] = _serve(service, arrivals, bodies, part, threads)

    cpu = time.process_time()
    workers = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    cpu = time.process_time() - cpu
    return np.concatenate([np.asarray(r, dtype=np.int64) for r in results]), cpu, ids


def thread_cpu_ns() -> dict[int, int]:
    """CPU time of every thread of this process so far, in ns (schedstat's first field)."""
    out = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            out[int(task.name)] = int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return out


def pin(broker_pid: int, service: bool) -> dict[str, Any]:
    """The broker's every thread to BROKER_CORE; with ``service``, this process's to
    SERVICE_CORE (else the service may use every core, the broker's included)."""
    if len(os.sched_getaffinity(0)) < 2:
        return {"pinned": False, "why": "fewer than 2 cores available"}
    done = subprocess.run(
        ["taskset", "-a", "-p", "-c", str(BROKER_CORE), str(broker_pid)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return {"pinned": False, "why": done.stderr.strip()[:200]}
    if service:
        for task in Path("/proc/self/task").iterdir():  # threads started later inherit it
            os.sched_setaffinity(int(task.name), {SERVICE_CORE})
    threads = len(list(Path(f"/proc/{broker_pid}/task").iterdir()))
    return {"pinned": True, "service_pinned": service, "broker_threads": threads}


def _figures(latencies: np.ndarray, cpu: float) -> dict[str, float]:
    p50, p99, p999 = np.percentile(latencies, [50, 99, 99.9]) / 1000
    return {
        "p50_us": round(p50, 1),
        "p99_us": round(p99, 1),
        "p999_us": round(p999, 1),
        "cpu_s": round(cpu, 2),
    }


def _round(live: Any, make: Any, scorer: Any, arrivals: Any, bodies: Any, threads: int):
    """One tap (or none) serving the arrivals: figures, and the tap's counters."""
    before = thread_cpu_ns()
    tap = make(live) if make else None
    latencies, cpu, request_ids = _run_one(_Service(scorer, tap), arrivals, bodies, threads)
    figures = _figures(latencies, cpu)
    if tap is None:
        return figures, None
    stats = tap.stats()
    after = thread_cpu_ns()  # the tap's threads still run: read them before close()
    own = [tid for tid in after if tid not in before and tid not in request_ids]
    tap_ns = sum(after[tid] for tid in own)
    tap.close(30)
    figures["tap_threads"] = len(own)
    figures["tap_cpu_us_per_sampled"] = round(tap_ns / 1000 / max(1, stats["enqueued"]), 1)
    return figures, tap.stats()


def run(args: argparse.Namespace) -> dict[str, Any]:
    from shadow.kit.live_service import live_scorer
    from shadow.kit.reference_models import build_reference_models

    settings = load_settings()
    tap_config = json.loads(args.tap_config)
    if args.producer_config != "{}":
        tap_config["producer_config"] = json.loads(args.producer_config)
    if tap_config:
        tap = settings.tap.model_copy(update=tap_config)
        settings = settings.model_copy(update={"tap": tap})
    model = build_reference_models()["baseline"]
    scorer = live_scorer(model.path, "fraud@1", 0.5)
    bodies = [json.dumps(f).encode() for f in feature_dicts(TransactionGenerator(5).batch(2000))]
    rng = np.random.default_rng(3)
    arrivals = np.cumsum(rng.exponential(1e9 / args.rps, args.requests))
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in TAPS}
    counters: dict[str, Any] = {}
    pinned: dict[str, Any] = {"pinned": False}
    broker: list[int] = []
    with bench_broker(settings, broker.append) as live:
        if args.pin_broker:
            no = {"pinned": False, "why": "external broker"}
            pinned = pin(broker[0], args.pin_service) if broker else no
        topic = f"shadow-bench-{uuid.uuid4().hex[:8]}"
        live = with_kafka(live, topic=topic)
        ensure_topic(live.kafka, topic, 3)
        for _ in range(args.rounds):  # interleaved, so drifting machine load hits every tap alike
            for name, make in TAPS.items():
                figures, stats = _round(live, make, scorer, arrivals, bodies, args.threads)
                samples[name].append(figures)
                counters[name] = stats or counters.get(name)
    return _summary(args, samples, counters, pinned, tap_config)


def _summary(
    args: argparse.Namespace,
    samples: dict[str, list[dict[str, float]]],
    counters: dict[str, Any],
    pinned: dict[str, Any],
    tap_config: dict[str, Any],
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "requests": args.requests,
        "rps": args.rps,
        "threads": args.threads,
        "rounds": args.rounds,
        **pinned,
        "tap_config": tap_config,
        "sender_idle_ms": _idle_ms(),
    }
    for name, runs in samples.items():
        for field in runs[0]:
            out[f"{name}_{field}"] = float(np.median([r[field] for r in runs]))
        out[f"runs_{name}_p50_us"] = [r["p50_us"] for r in runs]
        out[f"runs_{name}_p99_us"] = [r["p99_us"] for r in runs]
        if name == "none":
            continue
        overhead = [
            tap["p50_us"] / none["p50_us"] - 1
            for tap, none in zip(runs, samples["none"], strict=True)
        ]
        out[f"{name}_p50_overhead"] = round(float(np.median(overhead)), 3)
        out[f"runs_{name}_p50_overhead"] = [round(x, 3) for x in overhead]
        out[f"runs_{name}_tap_cpu_us_per_sampled"] = [r["tap_cpu_us_per_sampled"] for r in runs]
        if counters.get(name):
            out[f"{name}_dropped"] = counters[name]["dropped"]
            out[f"{name}_delivered"] = counters[name]["delivered"]
    out["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return out


def _idle_ms() -> float:
    import producers.tap

    return producers.tap.IDLE_SLEEP_S * 1000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--requests", type=int, default=20_000, help="requests per round and tap")
    parser.add_argument("--rps", type=float, default=2_000, help="arrivals per second")
    parser.add_argument("--threads", type=int, default=4, help="request threads")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (medians are reported)")
    parser.add_argument("--pin-broker", action="store_true", help="the broker on core 1 only")
    parser.add_argument("--pin-service", action="store_true", help="and the service on core 0")
    parser.add_argument("--tap-config", default="{}", help="JSON: tap settings to override")
    parser.add_argument("--producer-config", default="{}", help="JSON: librdkafka overrides")
    parser.add_argument(
        "--sender-idle-ms", type=float, default=None, help="measure another ShadowTap idle sleep"
    )
    args = parser.parse_args(argv)
    if args.sender_idle_ms is not None:
        import producers.tap

        producers.tap.IDLE_SLEEP_S = args.sender_idle_ms / 1000
    emit(run(args), args.json)


if __name__ == "__main__":
    main()
