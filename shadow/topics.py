"""Topic admin - create the transaction, dead-letter and predictions topics; say what exists.

A topic the broker creates on first use gets the broker's default partition count (often 1),
and a consumer group cannot have more busy workers than its topic has partitions: create the
topics first, with as many partitions as workers you may ever run.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from shadow.clients import base_config, ensure_topic
from shadow.errors import ServiceError
from shadow.settings import KafkaSettings, Settings


@dataclass(frozen=True)
class TopicState:
    """One topic as the broker has it after `create_topics`."""

    role: str
    name: str
    status: str
    """"created" by this call, or "exists" (left exactly as it was)."""
    partitions: int
    replication: int
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def shadow_topics(settings: Settings) -> list[tuple[str, str]]:
    """(role, name) of every topic shadow uses with these settings."""
    topics = [("transactions", settings.kafka.topic), ("dlq", settings.kafka.dlq)]
    if settings.worker.predictions_topic:
        topics.append(("predictions", settings.worker.predictions_topic))
    return topics


def create_topics(
    kafka: KafkaSettings,
    topics: list[tuple[str, str]],
    partitions: int,
    replication: int,
    timeout: float = 30.0,
) -> list[TopicState]:
    """Create the topics that do not exist; existing ones are reported, never altered."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(base_config(kafka))
    before = describe(admin, kafka, timeout)
    missing = [name for _role, name in topics if name not in before]
    if missing:
        new = [NewTopic(name, partitions, replication) for name in missing]
        futures = admin.create_topics(new, operation_timeout=timeout, request_timeout=timeout)
        for name, future in futures.items():
            _created(name, future, timeout)
    after = _settled(admin, kafka, missing, timeout)
    return [_state(role, name, name in missing, after, partitions) for role, name in topics]


def describe(admin: Any, kafka: KafkaSettings, timeout: float) -> dict[str, tuple[int, int]]:
    """Every topic of the cluster: name -> (partitions, replication factor)."""
    from confluent_kafka import KafkaException

    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise ServiceError(
            "kafka",
            f"no broker at {base_config(kafka)['bootstrap.servers']} answered within "
            f"{timeout:g}s ({exc.args[0].str()}): check kafka.bootstrap_servers",
        ) from None
    return {
        name: (
            len(topic.partitions),
            min((len(p.replicas) for p in topic.partitions.values()), default=0),
        )
        for name, topic in metadata.topics.items()
    }


def _settled(
    admin: Any, kafka: KafkaSettings, created: list[str], timeout: float
) -> dict[str, tuple[int, int]]:
    """The cluster's topics once the metadata shows every new topic with its partitions."""
    deadline = time.monotonic() + timeout
    while True:
        found = describe(admin, kafka, timeout)
        if all(found.get(name, (0, 0))[0] > 0 for name in created):
            return found
        if time.monotonic() >= deadline:
            return found
        time.sleep(0.2)


def ensure_predictions_topic(settings: Settings, topic: str, timeout: float = 30.0) -> int:
    """Create the topic if missing (monitor.partitions partitions); returns its partition count."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    try:
        ensure_topic(settings.kafka, topic, settings.monitor.partitions, timeout)
        metadata = AdminClient(base_config(settings.kafka)).list_topics(topic, timeout=timeout)
    except TimeoutError:
        problem = f"no answer from the broker in {timeout:g}s"
        raise ServiceError("kafka", f"cannot create or read topic {topic}: {problem}") from None
    except KafkaException as exc:
        problem = exc.args[0].str()
        raise ServiceError("kafka", f"cannot create or read topic {topic}: {problem}") from None
    return len(metadata.topics[topic].partitions)


def wait_for_broker(kafka: KafkaSettings, timeout: float = 10.0) -> None:
    """ServiceError (one line) unless a broker answers within `timeout` seconds."""
    from confluent_kafka.admin import AdminClient

    describe(AdminClient(base_config(kafka)), kafka, timeout)


def _created(name: str, future: Any, timeout: float) -> None:
    from confluent_kafka import KafkaError, KafkaException

    try:
        future.result(timeout)
    except KafkaException as exc:
        error = exc.args[0]
        if error.code() != KafkaError.TOPIC_ALREADY_EXISTS:  # created meanwhile: fine
            raise ServiceError("kafka", f"cannot create topic {name}: {error.str()}") from None


def _state(
    role: str, name: str, created: bool, found: dict[str, tuple[int, int]], asked: int
) -> TopicState:
    partitions, replication = found.get(name, (0, 0))
    note = ""
    if not created and partitions < asked:
        note = (
            f"fewer partitions than the {asked} asked: at most {partitions} busy worker(s); "
            "add partitions with kafka-topics.sh --alter (keys move to other partitions)"
        )
    return TopicState(role, name, "created" if created else "exists", partitions, replication, note)
