"""The worker's Kafka clients: its group consumer and the dead-letter producer."""

from __future__ import annotations

from typing import Any

from consumers.dlq import DEFAULT_MAX_BYTES, DeadLetters
from shadow.clients import base_config, ensure_topic, new_client
from shadow.settings import Settings

HEARTBEAT_MS = 300
"""How often a worker tells the group coordinator it is alive, and learns of a rebalance.
Adding a worker moves partitions in two cooperative rounds, each noticed at a heartbeat: at
librdkafka's 3 s a joining worker waited about 6 s for its first record (4.4 s measured), at
300 ms about 1.5 s. A heartbeat is one small request to the coordinator."""
SESSION_TIMEOUT_MS = 15_000
"""How long the coordinator waits for a silent worker (killed, cut off) before its partitions
go to the others; librdkafka's 45 s would leave them unread that long. 50 heartbeats, so a
slow moment never looks like a death; a worker stopped by SIGTERM leaves at once anyway."""


def consumer_config(settings: Settings, worker_id: str) -> dict[str, Any]:
    """Group member with manual, synchronous commits only (never auto commit or auto store).

    Cooperative-sticky assignment: a rebalance moves only the partitions that change owner,
    the others keep flowing (an eager strategy stops and flushes every partition of every
    member); heartbeat and session as above. worker.consumer_config overrides any of them."""
    config = base_config(settings.kafka)
    config.update(
        {
            "group.id": settings.worker.group_id,
            "client.id": worker_id,
            "partition.assignment.strategy": "cooperative-sticky",
            "heartbeat.interval.ms": HEARTBEAT_MS,
            "session.timeout.ms": SESSION_TIMEOUT_MS,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": False,
            # what `shadow tap from-topic` writes in an aborted transaction is never scored
            "isolation.level": "read_committed",
        }
    )
    config.update(settings.worker.consumer_config)
    return config


def make_consumer(settings: Settings, worker_id: str) -> Any:
    from confluent_kafka import Consumer

    config = consumer_config(settings, worker_id)
    shared = settings.kafka.client_config
    return new_client(Consumer, config, "worker.consumer_config", shared)


def make_dead_letters(settings: Settings) -> DeadLetters:
    """The dead-letter producer (idempotent, acks=all); creates the DLQ topic if missing."""
    from confluent_kafka import Producer

    ensure_topic(settings.kafka, settings.kafka.dlq, partitions=1)
    config = base_config(settings.kafka)
    config.update({"enable.idempotence": True, "acks": "all", "linger.ms": 5})
    scrub = settings.tap.card_guard != "warn"
    # originals larger than one produce request may carry are truncated to fit it
    max_bytes = int(config.get("message.max.bytes", DEFAULT_MAX_BYTES))
    return DeadLetters(new_client(Producer, config), settings.kafka.dlq, max_bytes, scrub)
