"""Bench: what the tap's offer() costs the live service: in sample, out of sample, broker down.

Each offer is timed alone with time.perf_counter_ns() around the call (the ~50 ns the two clock
reads cost is included, not subtracted). Features are realistic 31-feature transactions from
shadow.kit.synthetic, prepared before the clock runs. In-sample offers are paced in groups of 500 at
``--rate`` offers/s, as a live service spreads its traffic, so the producer's own threads get
the CPU time they need between groups; out-of-sample and broker-down offers run flat out.

The required keys measure the configured tap (``ShadowTap``, or ``InlineTap`` when
``tap.inline`` is set); ``inline_*`` keys measure ``InlineTap`` (everything in the caller's
thread) in the same run, against the same broker, so the two can be compared directly;
``redact_*`` keys time the redaction alone (drop and HMAC fields, the card guard) per record.
What a tap costs a whole request, threads and GIL included, is ``bench.tap_in_service``'s
question.

    python -m bench.tap_overhead --json
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Callable
from typing import Any

from bench.common import bench_broker, emit, with_kafka
from producers.inline import InlineTap
from producers.tap import open_tap
from shadow.clients import ensure_topic
from shadow.envelope import LiveScore
from shadow.kit.dev.process import free_port
from shadow.kit.synthetic import TransactionGenerator, feature_dicts
from shadow.redaction import Redactor
from shadow.sampling import Sampler
from shadow.settings import Settings, load_settings

GROUP = 500


def _ids(sampler: Sampler, count: int, inside: bool) -> list[str]:
    ids: list[str] = []
    i = 0
    while len(ids) < count:
        txn_id = f"bench-{i:09d}"
        if sampler(txn_id) is inside:
            ids.append(txn_id)
        i += 1
    return ids


def _timed(
    tap: InlineTap, ids: list[str], feats: list[dict], rate: float | None
) -> tuple[list[int], int]:
    """Per-offer nanoseconds, and how many offers raised into the caller (must be 0)."""
    clock = time.perf_counter_ns
    offer = tap.offer
    live = LiveScore("fraud@live", 0.0123, "pass", 2.5)
    pool = len(feats)
    times = [0] * len(ids)
    raised = 0
    gap = GROUP / rate if rate else 0.0
    start = time.monotonic()
    for i, txn_id in enumerate(ids):
        features = feats[i % pool]
        t0 = clock()
        try:
            offer(txn_id, features, live, 1_767_225_600_000 + i)
        except Exception:  # noqa: BLE001 - the tap promises never to raise: count it if it does
            raised += 1
        times[i] = clock() - t0
        if gap and i % GROUP == GROUP - 1:
            pause = start + (i + 1) // GROUP * gap - time.monotonic()
            if pause > 0:
                time.sleep(pause)
    return times, raised


def _redact_times(settings: Settings, feats: list[dict], rounds: int = 20) -> list[int]:
    """Per-record nanoseconds of the tap's redaction (drop/HMAC fields, the card guard) alone:
    what ShadowTap's sender spends on it per record, and InlineTap's offer() in the caller."""
    redact = Redactor.from_settings(settings.tap).redact
    clock = time.perf_counter_ns
    times: list[int] = []
    for _ in range(rounds):
        for features in feats:
            t0 = clock()
            redact(features)
            times.append(clock() - t0)
    return times


def _us(times: list[int], q: float) -> float:
    ordered = sorted(times)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000, 3)


def _scenarios(
    make: Callable[[Settings], InlineTap],
    live: Settings,
    down: Settings,
    ids: tuple[list[str], list[str]],
    feats: list[dict],
    rate: float,
) -> dict[str, Any]:
    """In sample and out of sample on the live broker, then in sample with the broker down."""
    inside, outside = ids
    with make(live) as tap:
        t_in, raised_in = _timed(tap, inside, feats, rate)
        t_out, raised_out = _timed(tap, outside, feats, None)
        tap.close(60)
        in_stats = tap.stats()
    with make(down) as tap:
        t_down, raised_down = _timed(tap, inside, feats, None)
        tap.close(0)
        down_stats = tap.stats()
    return {
        "in": t_in,
        "out": t_out,
        "down": t_down,
        "raised": raised_in + raised_out + raised_down,
        "in_stats": in_stats,
        "down_stats": down_stats,
    }


def run(offers: int, rate: float) -> dict[str, float | int]:
    """The configured tap (ShadowTap unless tap.inline) and InlineTap, in the same run."""
    settings = load_settings()
    feats = feature_dicts(TransactionGenerator(seed=11).batch(2000))
    sampler = Sampler(settings.tap.sample_rate, settings.tap.salt)
    ids = (_ids(sampler, offers, True), _ids(sampler, offers, False))
    down = with_kafka(settings, bootstrap_servers=f"127.0.0.1:{free_port()}")
    with bench_broker(settings) as live:
        topic = f"shadow-bench-{uuid.uuid4().hex[:8]}"
        live = with_kafka(live, topic=topic)
        ensure_topic(live.kafka, topic, 3)
        main = _scenarios(open_tap, live, down, ids, feats, rate)
        inline = _scenarios(InlineTap, live, down, ids, feats, rate)
    redacted = _redact_times(settings, feats)
    return {
        "offer_in_p50_us": _us(main["in"], 0.5),
        "offer_in_p99_us": _us(main["in"], 0.99),
        "offer_out_p99_us": _us(main["out"], 0.99),
        "offer_down_p99_us": _us(main["down"], 0.99),
        "offers": len(main["in"]) + len(main["out"]) + len(main["down"]),
        "exceptions": main["raised"] + inline["raised"],
        "tap": "inline" if settings.tap.inline else "shadow",
        "offer_out_p50_us": _us(main["out"], 0.5),
        "offer_down_p50_us": _us(main["down"], 0.5),
        "offer_in_p999_us": _us(main["in"], 0.999),
        "in_delivered": main["in_stats"]["delivered"],
        "in_dropped": main["in_stats"]["dropped"],
        "down_dropped": main["down_stats"]["dropped"],
        "inline_in_p50_us": _us(inline["in"], 0.5),
        "inline_in_p99_us": _us(inline["in"], 0.99),
        "inline_out_p99_us": _us(inline["out"], 0.99),
        "inline_down_p99_us": _us(inline["down"], 0.99),
        "inline_in_delivered": inline["in_stats"]["delivered"],
        "inline_in_dropped": inline["in_stats"]["dropped"],
        "rate_per_s": rate,
        "redact_p50_us": _us(redacted, 0.5),
        "redact_p99_us": _us(redacted, 0.99),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--offers", type=int, default=200_000, help="offers per scenario")
    parser.add_argument("--rate", type=float, default=50_000, help="in-sample offers per second")
    args = parser.parse_args(argv)
    result = run(args.offers, args.rate)
    emit(result, args.json)


if __name__ == "__main__":
    main()
