"""InlineTap without a reachable broker: it never raises, never blocks, and its counters add up."""

from __future__ import annotations

import time
from typing import Any

import pytest

from producers.inline import InlineTap, tap_producer_config
from shadow.envelope import LiveScore
from shadow.errors import ConfigError
from shadow.kit.dev.process import free_port
from shadow.sampling import Sampler
from shadow.settings import Settings, load_settings

LIVE = LiveScore("fraud@live", 0.2, "pass", 1.5)


def _settings(**tap: Any) -> Settings:
    # nothing listens on this port: a broker that is down
    kafka = {"bootstrap_servers": f"127.0.0.1:{free_port()}", "topic": "unit"}
    return load_settings(kafka=kafka, tap=tap)


def _ids(inside: bool, count: int, rate: float = 1 / 3) -> list[str]:
    sampler = Sampler(rate, "shadow")
    return [i for i in (f"u-{n}" for n in range(count * 5)) if sampler(i) is inside][:count]


def test_counters_add_up_across_every_outcome() -> None:
    with InlineTap(_settings(queue_max_messages=10, max_envelope_bytes=600)) as tap:
        inside = _ids(True, 30)
        outside = _ids(False, 40)
        results = [tap.offer(i, {"amount": 1.0}, LIVE) for i in outside]
        # type: ignore below: wrong types on purpose: offer() counts them, never raises
        results.append(tap.offer(inside[25], None, LIVE))  # type: ignore[arg-type]
        results.append(tap.offer(inside[26], {"x": object()}, LIVE))  # type: ignore[dict-item]
        results.append(tap.offer(inside[27], {"a": 1}, LiveScore("m", float("nan"))))
        results.append(tap.offer(inside[28], {"big": "x" * 1000}, LIVE))
        # type: ignore below: a txn_id that is not text, on purpose
        results.append(tap.offer(42, {"a": 1}, LIVE))  # type: ignore[arg-type]
        results += [tap.offer(i, {"amount": 1.0}, LIVE) for i in inside[:25]]
        stats = tap.stats()
        tap.close(0.1)
    assert stats["offered"] == 70
    assert stats["sampled_out"] == 40
    assert stats["enqueued"] == 10  # the queue holds 10; the broker is down
    assert stats["dropped"] == 15
    assert stats["rejected"] == 5
    # what offer() answered agrees with the counters: True for each record enqueued only
    assert results.count(True) == 10
    assert results.count(False) == stats["sampled_out"] + stats["dropped"] + stats["rejected"]


def test_close_fails_what_was_not_delivered_and_later_offers_drop() -> None:
    tap = InlineTap(_settings())
    for txn_id in _ids(True, 20):
        assert tap.offer(txn_id, {"amount": 2.0}, LIVE)
    started = time.monotonic()
    assert tap.close(0.2) == 20
    assert time.monotonic() - started < 5
    stats = tap.stats()
    assert stats["failed"] == 20
    assert stats["delivered"] == 0
    assert stats["in_flight"] == 0
    assert tap.offer(_ids(True, 1)[0], {"a": 1}, LIVE) is False
    assert tap.stats()["dropped"] == 1
    assert tap.close() == 0  # closing twice is harmless


def test_offer_returns_at_once_when_the_queue_is_full() -> None:
    with InlineTap(_settings(queue_max_messages=5)) as tap:
        ids = _ids(True, 2000)
        started = time.monotonic()
        for txn_id in ids:
            tap.offer(txn_id, {"amount": 3.0}, LIVE)
        elapsed = time.monotonic() - started
        stats = tap.stats()
        tap.close(0.1)
    assert stats["dropped"] == 1995
    assert elapsed < 2.0  # 2,000 offers; a blocking produce would wait seconds per call


def test_a_full_queue_is_retried_after_a_pause() -> None:
    with InlineTap(_settings(sample_rate=1.0, queue_max_messages=1)) as tap:
        assert tap.offer("first", {}, LIVE)
        assert tap.room()
        assert not tap.offer("second", {}, LIVE)  # refused by the queue
        assert not tap.room()  # a replay would wait here
        assert not tap.offer("third", {}, LIVE)  # dropped without encoding: queue still full
        time.sleep(0.05)
        tap._kafka.producer.purge()  # make room, as a returning broker would
        deadline = time.monotonic() + 5
        while tap.stats()["in_flight"] and time.monotonic() < deadline:
            time.sleep(0.01)  # the purge report is served by the tap's poll thread
        assert tap.offer("fourth", {}, LIVE)
        stats = tap.stats()
        tap.close(0.1)
    assert stats["enqueued"] == 2
    assert stats["dropped"] == 2


def test_rate_one_mirrors_everything() -> None:
    with InlineTap(_settings(sample_rate=1.0)) as tap:
        assert all(tap.offer(f"x-{i}", {}, LIVE) for i in range(50))
        assert tap.stats()["sampled_out"] == 0
        tap.close(0.1)


def test_missing_hmac_key_fails_at_startup() -> None:
    with pytest.raises(ConfigError):
        InlineTap(_settings(hmac_fields=("pan",)))


def test_producer_config_is_safe_and_overridable() -> None:
    settings = _settings(linger_ms=7, producer_config={"batch.num.messages": "500"})
    config = tap_producer_config(settings, {"acks": "1"})
    assert config["enable.idempotence"] is True
    assert config["linger.ms"] == 7
    assert config["compression.type"] == "lz4"
    assert config["queue.buffering.max.messages"] == 100_000
    assert config["batch.num.messages"] == "500"
    assert config["acks"] == "1"
    assert tap_producer_config(settings)["acks"] == "all"


def test_an_unknown_producer_property_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        InlineTap(_settings(producer_config={"no.such.property": "1"}))
    assert caught.value.key == "tap.producer_config"
