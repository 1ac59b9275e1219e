"""Kafka client configuration from the settings, and topic creation: one place for both."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from shadow.errors import ConfigError, ServiceError
from shadow.kafka_logs import KAFKA_LOG
from shadow.settings import KafkaSettings

logger = logging.getLogger(__name__)

Client = TypeVar("Client")


def bootstrap_servers(kafka: KafkaSettings) -> str:
    """kafka.bootstrap_servers; a ConfigError when unset (the `shadow` command sets it to the
    local broker's address when `shadow dev kafka start` runs one: shadow.app.dev_broker)."""
    if kafka.bootstrap_servers:
        return kafka.bootstrap_servers
    raise ConfigError(
        "kafka.bootstrap_servers",
        "not set and no local broker runs: set it, or run `shadow dev kafka start`",
    )


def base_config(kafka: KafkaSettings) -> dict[str, Any]:
    """librdkafka properties every client shares: brokers, security, extra client_config."""
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap_servers(kafka),
        "security.protocol": kafka.security_protocol,
        # librdkafka's own messages go through logging, not straight to stderr: connection
        # trouble as WARNING, each kind at most once per interval plus a count (KafkaLog)
        "logger": KAFKA_LOG,
        "error_cb": KAFKA_LOG.error,
    }
    if kafka.sasl_mechanism:
        config["sasl.mechanism"] = kafka.sasl_mechanism
        config["sasl.username"] = kafka.sasl_username or ""
        config["sasl.password"] = (
            kafka.sasl_password.get_secret_value() if kafka.sasl_password else ""
        )
    config.update(kafka.client_config)
    return config


def new_client(
    factory: Callable[[dict[str, Any]], Client],
    config: dict[str, Any],
    setting: str = "kafka.client_config",
    shared: Mapping[str, Any] | None = None,
) -> Client:
    """factory(config) (a confluent_kafka Producer, Consumer or AdminClient); a property
    librdkafka refuses is a ConfigError naming `setting` (that client's overrides), or
    kafka.client_config when the property came from `shared` (that setting's value), with any
    secret value masked in the message."""
    from confluent_kafka import KafkaException

    try:
        return factory(config)
    except KafkaException as exc:
        text = exc.args[0].str()
        if any(f'"{name}"' in text for name in shared or {}):
            setting = "kafka.client_config"
        raise ConfigError(setting, f"librdkafka refused it: {_masked(text, config)}") from None


def _masked(text: str, config: Mapping[str, Any]) -> str:
    from shadow.masking import MASK, secret_property

    for name, value in config.items():
        if secret_property(name) and isinstance(value, str) and value:
            text = text.replace(value, MASK)
    return text


def ensure_topic(
    kafka: KafkaSettings,
    topic: str,
    partitions: int = 6,
    timeout: float = 30.0,
    config: dict[str, str] | None = None,
) -> None:
    """Create the topic if it does not exist (an existing one is left as it is); `config`
    holds topic-level properties, e.g. {"cleanup.policy": "compact"}."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = new_client(AdminClient, base_config(kafka))
    futures = admin.create_topics(
        [NewTopic(topic, partitions, 1, config=config or {})], operation_timeout=timeout
    )
    try:
        futures[topic].result(timeout)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise ServiceError(
                "kafka", f"cannot create topic {topic}: {exc.args[0].str()}"
            ) from None
    except TimeoutError:
        raise ServiceError(
            "kafka", f"cannot create topic {topic}: no broker answered within {timeout:.0f}s"
        ) from None
    else:
        logger.info("created topic %s with %d partitions", topic, partitions)
