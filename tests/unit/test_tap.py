"""ShadowTap (the hand-off tap) without a reachable broker: offer() never raises or blocks, the
counters add up at any moment, and every accepted record ends delivered or failed."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from producers.inline import InlineTap
from producers.tap import ShadowTap, open_tap
from shadow.envelope import LiveScore, decode
from shadow.errors import ConfigError
from shadow.kit.dev.process import free_port
from shadow.sampling import Sampler
from shadow.settings import Settings, load_settings

LIVE = LiveScore("fraud@live", 0.2, "pass", 1.5)
PARTS = ("sampled_out", "enqueued", "dropped", "rejected")


def _settings(**tap: Any) -> Settings:
    # nothing listens on this port: a broker that is down
    kafka = {"bootstrap_servers": f"127.0.0.1:{free_port()}", "topic": "unit"}
    return load_settings(kafka=kafka, tap=tap)


def _ids(count: int, inside: bool = True) -> list[str]:
    sampler = Sampler(1 / 3, "shadow")
    return [i for i in (f"h-{n}" for n in range(count * 5)) if sampler(i) is inside][:count]


def _settled(tap: ShadowTap, deadline_s: float = 5.0) -> dict[str, int]:
    """The stats once the sender has taken everything it can from the hand-off queue."""
    deadline = time.monotonic() + deadline_s
    while tap._pending and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.05)
    return tap.stats()


def test_open_tap_follows_the_setting() -> None:
    handoff, inline = open_tap(_settings()), open_tap(_settings(inline=True))
    try:
        assert type(handoff) is ShadowTap
        assert type(inline) is InlineTap
    finally:
        handoff.close(0.1)
        inline.close(0.1)


def test_every_outcome_is_counted_once() -> None:
    tap = ShadowTap(_settings(max_envelope_bytes=600))
    inside = _ids(30)
    results = [tap.offer(txn_id, {"a": 1}, LIVE) for txn_id in _ids(60, inside=False)]
    # type: ignore below: wrong types on purpose: offer() counts them, never raises
    results.append(tap.offer(inside[25], None, LIVE))  # type: ignore[arg-type]  # at offer
    results.append(tap.offer(42, {"a": 1}, LIVE))  # type: ignore[arg-type]  # at offer
    results.append(tap.offer(inside[26], {"x": object()}, LIVE))  # type: ignore[dict-item]
    results.append(tap.offer(inside[27], {"a": 1}, LiveScore("m", float("nan"))))
    results.append(tap.offer(inside[28], {"big": "x" * 1000}, LIVE))
    results += [tap.offer(i, {"amount": 1.0}, LIVE) for i in inside[:25]]
    stats = _settled(tap)
    tap.close(0.1)
    final = tap.stats()
    assert stats["offered"] == final["offered"] == 90
    assert stats["rejected"] == 5  # 2 refused by offer(), 3 by the sender's encoding
    assert stats["enqueued"] == 25 == stats["in_flight"]  # the broker is down
    # each offer in the one part its input puts it in: 60 out of the sample, none dropped
    assert {k: stats[k] for k in PARTS} == {
        "sampled_out": 60,
        "enqueued": 25,
        "dropped": 0,
        "rejected": 5,
    }
    assert results.count(True) == 28  # the sender's 3 rejections were accepted by offer()
    assert final["enqueued"] == final["failed"] == 25
    assert final["in_flight"] == final["delivered"] == 0


def test_counters_add_up_while_offers_run() -> None:
    tap = ShadowTap(_settings(queue_max_messages=50, handoff_queue=100))
    done = threading.Event()
    offered = [0]

    def offers() -> None:
        while not done.is_set():
            tap.offer(f"c-{offered[0]}", {"a": 1.0}, LIVE)
            offered[0] += 1

    thread = threading.Thread(target=offers)
    thread.start()
    snapshots = []
    for _ in range(200):
        before = offered[0]  # offers that had returned before stats() began
        stats = tap.stats()
        snapshots.append((before, stats, offered[0]))  # made by now: at most one more counted
    done.set()
    thread.join()
    tap.close(0.1)
    previous: dict[str, int] = {}
    for before, stats, made in snapshots:
        # every offer that had returned is counted, in one part; read in the right order, a
        # moving record is never counted twice: no snapshot counts more offers than were
        # made, and no counter goes back
        assert before <= stats["offered"] <= made + 1
        assert stats["enqueued"] >= stats["delivered"] + stats["failed"]
        assert all(stats[k] >= previous.get(k, 0) for k in (*PARTS, "offered"))
        previous = stats
    final = tap.stats()
    sampler = Sampler(1 / 3, "shadow")
    outside = sum(not sampler(f"c-{n}") for n in range(offered[0]))
    assert final["offered"] == offered[0]
    assert final["sampled_out"] == outside  # the ids out of the sample, counted apart
    assert final["enqueued"] + final["dropped"] + final["rejected"] == offered[0] - outside
    assert final["enqueued"] == final["failed"] <= 50 + 100 + 1


def test_a_dead_broker_fills_both_queues_then_offers_drop() -> None:
    tap = ShadowTap(_settings(sample_rate=1.0, queue_max_messages=10, handoff_queue=20))
    results = [tap.offer(f"d-{n}", {"a": n}, LIVE) for n in range(20)]
    stats = _settled(tap, 1.0)
    results += [tap.offer(f"e-{n}", {"a": n}, LIVE) for n in range(200)]
    assert all(results[:20])
    later = tap.stats()
    started = time.monotonic()
    left = tap.close(0.2)
    assert time.monotonic() - started < 5
    final = tap.stats()
    assert stats["enqueued"] == 20 and stats["in_flight"] == 20
    assert 20 + 200 - later["dropped"] == later["enqueued"] <= 10 + 1 + 20
    assert left == final["failed"] == final["enqueued"] == later["enqueued"]
    assert final["dropped"] == later["dropped"] and final["in_flight"] == 0


def test_a_full_hand_off_queue_drops_without_blocking() -> None:
    tap = ShadowTap(_settings(sample_rate=1.0, handoff_queue=5))
    tap._kafka.produce = lambda *_args: time.sleep(0.001)  # a sender far slower than the offers
    started = time.monotonic()
    results = [tap.offer(f"q-{n}", {"a": n}, LIVE) for n in range(5000)]
    assert time.monotonic() - started < 2.0
    tap.close(0.1)
    stats = tap.stats()
    assert stats["offered"] == 5000
    assert results.count(True) == stats["enqueued"]
    assert results.count(False) == stats["dropped"] > 4000


def test_the_callers_dict_can_change_right_after_offer() -> None:
    tap = ShadowTap(_settings(sample_rate=1.0))
    sent: list[bytes] = []
    tap._kafka.produce = lambda topic, value, *rest: sent.append(value)
    features = {"amount": 10.0, "pan": "4111111111111111"}
    assert tap.offer("m-1", features, LIVE, 5)
    features["amount"] = 999.0  # the caller reuses its dict at once
    deadline = time.monotonic() + 5
    while not sent and time.monotonic() < deadline:
        time.sleep(0.005)
    tap.close(0.1)
    envelope = decode(sent[0], key=b"m-1")
    assert envelope.features == {"amount": 10.0}  # and the PAN was dropped by the sender
    assert envelope.event_time == 5


def test_closed_tap_drops_and_closing_twice_is_harmless() -> None:
    tap = ShadowTap(_settings(sample_rate=1.0))
    assert tap.close(0.1) == 0
    assert tap.offer("late", {"a": 1}, LIVE) is False
    assert tap.stats()["dropped"] == 1
    assert tap.close() == 0


def test_missing_hmac_key_fails_at_startup() -> None:
    with pytest.raises(ConfigError):
        ShadowTap(_settings(hmac_fields=("pan",)))
