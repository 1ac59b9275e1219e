"""Integration fixtures: a real Apache Kafka broker and a real S3 API server, per test session.

kafka_bootstrap: $SHADOW_TEST_KAFKA if set; else a testcontainers Kafka when a Docker engine
answers; else the local KRaft broker from the official jars, stopped at the end. When none can
start, the tests fail: they never skip.
s3_endpoint: $SHADOW_TEST_S3 if set, else moto's server; `s3_store` gives a fresh bucket per test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from shadow.kit.dev.kafka import LocalKafka
from shadow.kit.dev.s3 import LocalS3
from shadow.settings import Settings, load_settings

pytestmark = pytest.mark.integration

SASL_USERS = {"shadow": "shadow-test-secret"}
"""Accounts of the session broker's SASL_PLAINTEXT listener (PLAIN)."""
S3_KEY = "testing"
S3_SECRET = "testing"  # moto accepts any credentials


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
    except Exception:  # noqa: BLE001 - no engine, no socket, no package: no Docker
        return False
    return True


@pytest.fixture(scope="session")
def local_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka | None]:
    """The local broker when this session started one (None when it reuses another)."""
    if os.environ.get("SHADOW_TEST_KAFKA") or _docker_answers():
        yield None
        return
    defaults = Settings().kafka
    run_dir = tmp_path_factory.mktemp("kafka")
    kafka = LocalKafka(defaults.dev_version, defaults.dev_home, run_dir, sasl_users=SASL_USERS)
    kafka.start()
    yield kafka
    kafka.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(local_kafka: LocalKafka | None) -> Iterator[str]:
    if os.environ.get("SHADOW_TEST_KAFKA"):
        yield os.environ["SHADOW_TEST_KAFKA"]
    elif local_kafka is not None:
        yield local_kafka.status().bootstrap
    else:
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server()


@pytest.fixture(scope="session")
def local_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalS3 | None]:
    if os.environ.get("SHADOW_TEST_S3"):
        yield None
        return
    server = LocalS3(Path(), tmp_path_factory.mktemp("s3"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_endpoint(local_s3: LocalS3 | None) -> str:
    # type: ignore below: local_s3 is None only when SHADOW_TEST_S3 names a server
    return os.environ.get("SHADOW_TEST_S3") or local_s3.status().bootstrap  # type: ignore[union-attr]


@pytest.fixture
def s3_client(s3_endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=S3_KEY,
        aws_secret_access_key=S3_SECRET,
    )


@pytest.fixture
def s3_bucket(s3_client: Any) -> str:
    """A fresh, empty bucket for this test."""
    name = f"shadow-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_store(s3_endpoint: str, s3_bucket: str) -> dict[str, Any]:
    """`store` settings for a fresh bucket on the S3 API server."""
    return {
        "uri": f"s3://{s3_bucket}/shadow",
        "endpoint_url": s3_endpoint,
        "access_key_id": S3_KEY,
        "secret_access_key": S3_SECRET,
    }


@pytest.fixture
def unique_topic(kafka_bootstrap: str) -> Callable[..., str]:
    """Factory: a new topic with N partitions (default 3), created and ready."""

    def make(partitions: int = 3, prefix: str = "t") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
        admin.create_topics([NewTopic(name, partitions, 1)])[name].result(30)
        return name

    return make


@pytest.fixture
def unique_group() -> str:
    return f"g-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def make_producer(kafka_bootstrap: str) -> Callable[..., Producer]:
    def make(**overrides: Any) -> Producer:
        return Producer(
            {"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True, **overrides}
        )

    return make


@pytest.fixture
def make_consumer(kafka_bootstrap: str) -> Iterator[Callable[..., Consumer]]:
    made: list[Consumer] = []

    def make(group: str, **overrides: Any) -> Consumer:
        consumer = Consumer(
            {
                "bootstrap.servers": kafka_bootstrap,
                "group.id": group,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                **overrides,
            }
        )
        made.append(consumer)
        return consumer

    yield make
    for consumer in made:
        consumer.close()


@pytest.fixture
def settings_for(kafka_bootstrap: str, tmp_path: Path) -> Callable[..., Settings]:
    """Factory: Settings pointed at the test broker, a tmp store and a tmp SQLite registry."""

    def make(**sections: dict[str, Any]) -> Settings:
        merged: dict[str, dict[str, Any]] = {
            "kafka": {"bootstrap_servers": kafka_bootstrap},
            "store": {"uri": str(tmp_path / "store")},
            "registry": {"url": f"sqlite:///{tmp_path / 'registry.db'}"},
        }
        for name, values in sections.items():
            merged.setdefault(name, {}).update(values)
        return load_settings(**merged)

    return make


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server for the session (tests/postgres.py: $SHADOW_TEST_POSTGRES or our own)."""
    from tests.postgres import running_postgres

    with running_postgres() as url:
        yield url
