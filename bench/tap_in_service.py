"""Bench: what each tap costs a live service's requests, not just the offer() call.

A stand-in live service: ``--threads`` request threads, Poisson arrivals at ``--rps`` requests/s
(open loop: a late request waits, and that wait counts). Each request parses its JSON body,
scores one transaction with the baseline reference model in ONNX Runtime (as the live service
does), offers it to the tap and answers in JSON. Request latency runs from the request's arrival
time to its answer. The same arrivals are served with no tap, with ``ShadowTap`` (the default
hand-off tap) and with ``InlineTap``, against the same broker, so the figures compare directly.

Prints one JSON line: per tap, request latency p50/p99/p99.9 in microseconds, the process's CPU
seconds and the tap's counters.

    python -m bench.tap_in_service --json
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from collections.abc import Callable
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

    def work(part: int) -> None:
        results[part] = _serve(service, arrivals, bodies, part, threads)

    cpu = time.process_time()
    workers = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    cpu = time.process_time() - cpu
    return np.concatenate([np.asarray(r, dtype=np.int64) for r in results]), cpu


def _figures(latencies: np.ndarray, cpu: float) -> dict[str, float]:
    p50, p99, p999 = np.percentile(latencies, [50, 99, 99.9]) / 1000
    return {
        "p50_us": round(p50, 1),
        "p99_us": round(p99, 1),
        "p999_us": round(p999, 1),
        "cpu_s": round(cpu, 2),
    }


def run(requests: int, rps: float, threads: int, rounds: int) -> dict[str, Any]:
    from shadow.kit.live_service import live_scorer
    from shadow.kit.reference_models import build_reference_models

    settings = load_settings()
    model = build_reference_models()["baseline"]
    scorer = live_scorer(model.path, "fraud@1", 0.5)
    bodies = [json.dumps(f).encode() for f in feature_dicts(TransactionGenerator(5).batch(2000))]
    rng = np.random.default_rng(3)
    arrivals = np.cumsum(rng.exponential(1e9 / rps, requests))
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in TAPS}
    counters: dict[str, Any] = {}
    with bench_broker(settings) as live:
        topic = f"shadow-bench-{uuid.uuid4().hex[:8]}"
        live = with_kafka(live, topic=topic)
        ensure_topic(live.kafka, topic, 3)
        for _ in range(rounds):  # interleaved, so drifting machine load hits every tap alike
            for name, make in TAPS.items():
                tap = make(live) if make else None
                latencies, cpu = _run_one(_Service(scorer, tap), arrivals, bodies, threads)
                if tap is not None:
                    tap.close(30)
                    counters[name] = tap.stats()
                samples[name].append(_figures(latencies, cpu))
    out: dict[str, Any] = {"requests": requests, "rps": rps, "threads": threads, "rounds": rounds}
    for name, runs in samples.items():
        for field in runs[0]:
            out[f"{name}_{field}"] = float(np.median([r[field] for r in runs]))
        if name in counters:
            out[f"{name}_dropped"] = counters[name]["dropped"]
            out[f"{name}_delivered"] = counters[name]["delivered"]
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--requests", type=int, default=20_000, help="requests per round and tap")
    parser.add_argument("--rps", type=float, default=2_000, help="arrivals per second")
    parser.add_argument("--threads", type=int, default=4, help="request threads")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (medians are reported)")
    args = parser.parse_args(argv)
    result = run(args.requests, args.rps, args.threads, args.rounds)
    emit(result, args.json)


if __name__ == "__main__":
    main()
