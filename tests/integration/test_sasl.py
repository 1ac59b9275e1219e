"""A SASL-secured broker (SASL_PLAINTEXT, PLAIN): the tap and the monitor authenticate with the
same kafka settings, and a wrong password costs the live service nothing."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Consumer
from conftest import SASL_USERS
from monitor_support import monitor_settings, records, running

from consumers.publisher import PredictionPublisher
from producers.tap import ShadowTap
from shadow.clients import base_config, ensure_topic
from shadow.envelope import LiveScore, decode
from shadow.kit.dev.kafka import LocalKafka
from shadow.settings import Settings

pytestmark = pytest.mark.integration

__all__ = ["running"]  # the fixture, imported so pytest finds it here

USER, PASSWORD = next(iter(SASL_USERS.items()))
LIVE = LiveScore("fraud@live", 0.3, "pass", 1.0)


@pytest.fixture
def sasl_kafka(local_kafka: LocalKafka | None) -> dict[str, Any]:
    """kafka settings for the session broker's SASL listener."""
    if local_kafka is None:
        pytest.skip("only the session's own local broker has a known SASL account")
    return {
        "bootstrap_servers": local_kafka.sasl_bootstrap(),
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "PLAIN",
        "sasl_username": USER,
        "sasl_password": PASSWORD,
    }


def test_the_tap_mirrors_through_sasl(
    sasl_kafka: dict[str, Any], settings_for: Callable[..., Settings]
) -> None:
    topic = f"sasl-{uuid.uuid4().hex[:8]}"
    settings = settings_for(kafka={**sasl_kafka, "topic": topic}, tap={"sample_rate": 1.0})
    ensure_topic(settings.kafka, topic, 3)  # the admin client authenticates too
    with ShadowTap(settings) as tap:
        assert all(tap.offer(f"s-{i}", {"amount": float(i)}, LIVE) for i in range(300))
        assert tap.close(30) == 0
        assert tap.stats()["delivered"] == 300
    consumer = Consumer(
        {**base_config(settings.kafka), "group.id": topic, "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    keys: set[str] = set()
    deadline = time.monotonic() + 30
    while len(keys) < 300 and time.monotonic() < deadline:
        for message in consumer.consume(500, timeout=0.5):
            if message.error() is None:
                keys.add(decode(message.value(), key=message.key()).txn_id)
    consumer.close()
    assert keys == {f"s-{i}" for i in range(300)}


def test_a_wrong_password_fails_the_records_not_the_service(
    sasl_kafka: dict[str, Any], settings_for: Callable[..., Settings]
) -> None:
    kafka = {**sasl_kafka, "sasl_password": "not-the-password", "topic": "sasl-denied"}
    with ShadowTap(settings_for(kafka=kafka, tap={"sample_rate": 1.0})) as tap:
        started = time.monotonic()
        results = [tap.offer(f"w-{i}", {"a": i}, LIVE) for i in range(200)]
        assert time.monotonic() - started < 2.0
        assert all(results)
        time.sleep(1.0)  # the authentication attempts fail meanwhile
        assert tap.close(1.0) == 200
        stats = tap.stats()
    assert stats["failed"] == stats["enqueued"] == 200
    assert stats["delivered"] == 0


def test_the_monitor_reads_through_sasl(
    sasl_kafka: dict[str, Any],
    settings_for: Callable[..., Settings],
    unique_topic: Any,
    running: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def sasl_settings(**sections: Any) -> Settings:
        # the monitor's config file cannot hold the secret (it is written masked): the
        # monitor process reads it from the environment, as a deployment would
        sections["kafka"] = {**sasl_kafka, "sasl_password": None}
        return settings_for(**sections)

    monkeypatch.setenv("SHADOW__KAFKA__SASL_PASSWORD", PASSWORD)
    settings = monitor_settings(sasl_settings, unique_topic, fail_candidates=False)
    assert settings.kafka.security_protocol == "SASL_PLAINTEXT"
    monitor = running(settings)
    publisher = PredictionPublisher.from_settings(settings_for(**_with_password(settings)))
    publisher.send(records(150, random.Random(3)))
    assert publisher.close() == 0
    expected = {"good@1": 150.0, "const@1": 150.0}
    monitor.wait_for(lambda: monitor.totals() == expected, 60, "150 records over SASL")


def _with_password(settings: Settings) -> dict[str, Any]:
    return {
        "kafka": {**settings.kafka.model_dump(), "sasl_password": PASSWORD},
        "worker": {"predictions_topic": settings.worker.predictions_topic},
    }
