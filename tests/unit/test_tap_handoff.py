"""HandoffTap: the same counters and bytes as ShadowTap, with the work on a sender thread."""

from __future__ import annotations

import time
from typing import Any

from producers.handoff import HandoffTap, open_tap
from producers.tap import ShadowTap
from shadow.dev.process import free_port
from shadow.envelope import LiveScore, decode
from shadow.sampling import Sampler
from shadow.settings import Settings, load_settings

LIVE = LiveScore("fraud@live", 0.2, "pass", 1.5)


def _settings(**tap: Any) -> Settings:
    kafka = {"bootstrap_servers": f"127.0.0.1:{free_port()}", "topic": "unit"}
    return load_settings(kafka=kafka, tap={"handoff": True, **tap})


def _inside(count: int) -> list[str]:
    sampler = Sampler(1 / 3, "shadow")
    return [i for i in (f"h-{n}" for n in range(count * 5)) if sampler(i)][:count]


def test_open_tap_follows_the_setting() -> None:
    tap = open_tap(_settings())
    plain = open_tap(_settings(handoff=False))
    try:
        assert isinstance(tap, HandoffTap)
        assert type(plain) is ShadowTap
    finally:
        tap.close(0.1)
        plain.close(0.1)


def test_counters_add_up_and_pending_drains_to_zero() -> None:
    tap = HandoffTap(_settings(queue_max_messages=10))
    inside = _inside(40)
    tap.offer(inside[35], None, LIVE)  # type: ignore[arg-type]  # refused at the hand-off
    tap.offer(inside[36], {"a": 1}, LiveScore("m", float("inf")))  # refused by the sender
    for n in range(60):
        tap.offer(f"x-{n}", {"a": n}, LIVE)
    for txn_id in inside[:35]:
        tap.offer(txn_id, {"a": 1}, LIVE)
    running = tap.stats()
    assert running["offered"] == 97
    assert running["offered"] == sum(
        running[k] for k in ("sampled_out", "enqueued", "dropped", "rejected", "pending")
    )
    tap.close(0.1)
    final = tap.stats()
    assert final["pending"] == 0
    assert final["offered"] == 97
    assert final["rejected"] == 2
    assert final["enqueued"] == 10  # the producer queue holds 10; the broker is down
    assert final["sampled_out"] + final["enqueued"] + final["dropped"] + 2 == 97
    assert final["failed"] == 10


def test_a_full_hand_off_queue_drops_without_blocking() -> None:
    tap = HandoffTap(_settings(sample_rate=1.0, handoff_queue=5))
    tap._produce = lambda *_args: time.sleep(0.001)  # a sender far slower than the offers
    started = time.monotonic()
    results = [tap.offer(f"q-{n}", {"a": n}, LIVE) for n in range(5000)]
    assert time.monotonic() - started < 2.0
    tap.close(0.1)
    stats = tap.stats()
    assert stats["offered"] == 5000
    assert stats["pending"] == 0
    assert results.count(True) == stats["enqueued"]
    assert results.count(False) == stats["dropped"] > 4000


def test_the_callers_dict_can_change_right_after_offer() -> None:
    tap = HandoffTap(_settings(sample_rate=1.0))
    sent: list[bytes] = []
    tap._produce = lambda topic, value, *rest: sent.append(value)
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
