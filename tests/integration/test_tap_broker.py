"""Both taps on a real broker: the hash-selected set arrives once; a dead broker is harmless."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer

from producers.inline import InlineTap
from producers.tap import ShadowTap
from shadow.clients import ensure_topic
from shadow.envelope import SCHEMA_HEADER, LiveScore, decode
from shadow.kit.dev.kafka import LocalKafka
from shadow.sampling import is_sampled
from shadow.settings import Settings, load_settings

pytestmark = pytest.mark.integration

PAN = "5500005555555559"
CVV = "913"
KEY = "integration-test-hmac-key-32-bytes!"
LIVE = LiveScore("fraud@live", 0.07, "pass", 2.0)


def _features(i: int) -> dict[str, Any]:
    return {"amount": 10.0 + i % 97, "mcc": "5411", "present": i % 2 == 0, "pan": PAN, "cvv": CVV}


def _drain(consumer: Consumer, expected: int, timeout: float = 60.0) -> list[Any]:
    """Every message until `expected` arrived, then 2 more quiet seconds to catch duplicates."""
    messages: list[Any] = []
    deadline = time.monotonic() + timeout
    quiet_until = None
    while time.monotonic() < deadline:
        batch = consumer.consume(num_messages=2000, timeout=0.5)
        messages += [m for m in batch if m.error() is None]
        if len(messages) >= expected:
            quiet_until = quiet_until or time.monotonic() + 2.0
            if time.monotonic() > quiet_until:
                break
    return messages


@pytest.mark.parametrize("tap_class", [ShadowTap, InlineTap])
def test_thirty_thousand_offers_arrive_as_the_hash_selected_set_each_once(
    tap_class: type[InlineTap],
    settings_for: Callable[..., Settings],
    unique_topic: Callable[..., str],
    unique_group: str,
    make_consumer: Callable[..., Consumer],
) -> None:
    topic = unique_topic(partitions=3)
    tap_settings = {"hmac_fields": ["pan"], "hmac_key": KEY, "handoff_queue": 50_000}
    settings = settings_for(kafka={"topic": topic}, tap=tap_settings)
    ids = [f"it-{uuid.uuid4().hex[:6]}-{i}" for i in range(30_000)]
    expected = {i for i in ids if is_sampled(i, 1 / 3, "shadow")}
    with tap_class(settings) as tap:
        accepted = {i for n, i in enumerate(ids) if tap.offer(i, _features(n), LIVE)}
        assert tap.close(30) == 0
        stats = tap.stats()
    assert accepted == expected
    assert stats["enqueued"] == stats["delivered"] == len(expected)
    assert stats["sampled_out"] == 30_000 - len(expected)
    assert stats["failed"] == stats["dropped"] == stats["rejected"] == 0

    consumer = make_consumer(unique_group)
    consumer.subscribe([topic])
    messages = _drain(consumer, len(expected))
    keys = Counter(m.key().decode() for m in messages)
    assert set(keys) == expected
    assert max(keys.values()) == 1
    for message in messages[:500]:
        envelope = decode(message.value(), key=message.key())
        assert envelope.live == LIVE
        assert "cvv" not in envelope.features
        assert len(envelope.features["pan"]) == 64
        assert dict(message.headers())[SCHEMA_HEADER] == b"1"
    assert not any(PAN.encode() in m.value() or b'"cvv"' in m.value() for m in messages)


@pytest.fixture
def own_kafka(tmp_path: Path) -> Iterator[LocalKafka]:
    """A broker of this test's own, so halting it leaves the session broker alone."""
    defaults = Settings().kafka
    kafka = LocalKafka(defaults.dev_version, defaults.dev_home, tmp_path / "kafka")
    kafka.start()
    yield kafka
    kafka.stop()


@pytest.mark.parametrize("tap_class", [ShadowTap, InlineTap])
def test_broker_down_offers_return_and_count_then_delivery_resumes(
    tap_class: type[InlineTap], own_kafka: LocalKafka, tmp_path: Path
) -> None:
    bootstrap = own_kafka.status().bootstrap
    settings = load_settings(
        kafka={"bootstrap_servers": bootstrap, "topic": "down-test"},
        tap={"sample_rate": 1.0, "queue_max_messages": 1000, "handoff_queue": 1000},
        store={"uri": str(tmp_path / "store")},
    )
    ensure_topic(settings.kafka, "down-test", 3)
    # what can wait while the broker is away: the producer's queue, and for ShadowTap its
    # hand-off queue plus the record its sender holds
    capacity = 1000 if tap_class is InlineTap else 2001
    with tap_class(settings) as tap:
        for i in range(100):
            tap.offer(f"before-{i}", {"a": i}, LIVE)
        _wait(lambda: tap.stats()["delivered"] == 100)

        own_kafka.halt()
        started = time.monotonic()
        results = [tap.offer(f"down-{i}", {"a": i}, LIVE) for i in range(5000)]
        assert time.monotonic() - started < 5.0
        down = tap.stats()
        assert results.count(True) == down["enqueued"] - 100
        assert down["dropped"] >= 5000 - capacity
        assert down["offered"] == 5100
        assert down["offered"] == down["enqueued"] + down["dropped"] + down["rejected"]
        assert down["rejected"] == 0

        own_kafka.resume()
        _wait(lambda: tap.stats()["in_flight"] == 0, 60)  # the queued records go out first
        for i in range(100):
            assert tap.offer(f"after-{i}", {"a": i}, LIVE)
        assert tap.close(60) == 0
        final = tap.stats()
    assert final["delivered"] + final["failed"] == final["enqueued"]
    assert final["delivered"] >= 200
    assert _keys(bootstrap, "down-test") >= {f"after-{i}" for i in range(100)}


def _wait(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _keys(bootstrap: str, topic: str) -> set[str]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"g-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
        }
    )
    try:
        consumer.subscribe([topic])
        return {m.key().decode() for m in _drain(consumer, 200, timeout=30)}
    finally:
        consumer.close()


_EXITING_SERVICE = """
import sys
from producers.inline import InlineTap
from producers.tap import ShadowTap
from shadow.envelope import LiveScore
from shadow.settings import load_settings

kafka = {{"bootstrap_servers": {bootstrap!r}, "topic": {topic!r}}}
tap = {tap}(load_settings(kafka=kafka, tap={{"sample_rate": 1.0, "linger_ms": 500}}))
for i in range(100):
    tap.offer(f"exit-{{i}}", {{"a": i}}, LiveScore("m@1", 0.1))
sys.exit(0)  # no close(): the records are still queued (linger 500 ms)
"""


@pytest.mark.parametrize("tap_class", [ShadowTap, InlineTap])
def test_a_service_that_exits_without_close_still_delivers(
    tap_class: type[InlineTap],
    kafka_bootstrap: str,
    unique_topic: Callable[..., str],
    unique_group: str,
    make_consumer: Callable[..., Consumer],
) -> None:
    topic = unique_topic(partitions=1)
    script = _EXITING_SERVICE.format(bootstrap=kafka_bootstrap, topic=topic, tap=tap_class.__name__)
    root = Path(__file__).parents[2]
    subprocess.run([sys.executable, "-c", script], cwd=root, check=True, timeout=60)
    consumer = make_consumer(unique_group)
    consumer.subscribe([topic])
    keys = {m.key().decode() for m in _drain(consumer, 100, timeout=30)}
    assert keys == {f"exit-{i}" for i in range(100)}
