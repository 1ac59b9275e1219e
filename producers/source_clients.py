"""SourceClients - the topic source's Kafka side: a read_committed consumer, a transactional
producer, and the join's changelog topic.

Errors are translated here: a transaction the broker refuses for good (fenced by a newer
process with the same transactional.id, or a fatal producer error) is a SourceFailed, one line;
one that must be aborted raises TransactionAborted after the abort, and the caller reads again
from the committed offsets (``rewind``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)

from shadow.clients import base_config, ensure_topic, new_client
from shadow.envelope import JoinHalf, decode_join_half
from shadow.errors import ServiceError, ShadowError
from shadow.settings import Settings

logger = logging.getLogger(__name__)

TIMEOUT_S = 30.0
"""How long one transactional call (init, offsets, commit, abort) may take."""
COMMIT_PATIENCE_S = 120.0
"""How long a commit is retried while the broker answers with retriable errors."""
CHANGELOG_CONFIG = {"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"}


class SourceFailed(ShadowError):
    """The source cannot go on (fenced, fatal producer error); a restart resumes exactly once."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"from-topic: {problem}")


class TransactionAborted(Exception):
    """The open transaction was aborted; nothing of it is visible to read_committed readers."""


def consumer_config(settings: Settings) -> dict[str, Any]:
    conf = settings.source
    config = base_config(settings.kafka)
    config.update(
        {
            "group.id": conf.group_id,
            "client.id": f"shadow-source-{conf.instance_id}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            # a source topic written in transactions: only what its producer committed
            "isolation.level": "read_committed",
            "auto.offset.reset": conf.start_at,
            # the join's clock (a partition read to its end holds nothing back) and
            # --idle-exit (an empty topic answers with its end) hear of ends
            "enable.partition.eof": True,
        }
    )
    if not conf.decisions_topic:  # a restarted process takes its partitions back at once
        config["group.instance.id"] = conf.instance_id
    config.update(conf.consumer_config)
    return config


def producer_config(settings: Settings) -> dict[str, Any]:
    tap, conf = settings.tap, settings.source
    config = base_config(settings.kafka)
    config.update(
        {
            "transactional.id": conf.transactional_id,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": tap.linger_ms,
            "compression.type": tap.compression,
            "message.max.bytes": max(1_000_000, tap.max_envelope_bytes + 4096),
            "client.id": f"shadow-source-{conf.instance_id}",
        }
    )
    config.update(conf.producer_config)
    return config


class SourceClients:
    """Consumer and transactional producer of one source process."""

    def __init__(self, settings: Settings, topic: str, decisions_topic: str | None) -> None:
        self.settings = settings
        self.topics = [topic, decisions_topic] if decisions_topic else [topic]
        self.joined = decisions_topic is not None
        self.changelog_topic = settings.source.changelog_topic
        self.dlq_topic = settings.source.dlq_topic or settings.kafka.dlq
        self.consumer: Any = None
        self.producer: Any = None
        self._on_revoke: Callable[..., None] | None = None
        self.partitions: dict[str, list[int]] = {}
        """Joined mode: every partition of both topics, which this process reads."""

    def start(self, on_revoke: Callable[..., None]) -> None:
        """Connect; init_transactions fences an older process with our transactional.id and
        aborts the transaction it left open (a kill -9), before anything is read."""
        shared = self.settings.kafka.client_config
        config = producer_config(self.settings)
        self.producer = new_client(Producer, config, "source.producer_config", shared)
        self._call(self.producer.init_transactions, TIMEOUT_S)
        config = consumer_config(self.settings)
        self.consumer = new_client(Consumer, config, "source.consumer_config", shared)
        self._on_revoke = on_revoke
        ensure_topic(self.settings.kafka, self.dlq_topic, partitions=1)
        if self.joined:
            ensure_topic(self.settings.kafka, self.changelog_topic, 1, config=CHANGELOG_CONFIG)

    def attach(self) -> None:
        """Plain mode subscribes in the group; joined mode takes every partition of both
        topics (one process holds the whole join) from the committed offsets."""
        if not self.joined:
            self.consumer.subscribe(self.topics, on_revoke=self._on_revoke)
            return
        self.partitions = {topic: self._partitions(topic) for topic in self.topics}
        partitions = [TopicPartition(t, p) for t, ps in self.partitions.items() for p in ps]
        points = self._resume_points(partitions)
        logger.info(
            "reading from %s", ", ".join(f"{t.topic}[{t.partition}]@{t.offset}" for t in points)
        )
        self.consumer.assign(points)

    def _partitions(self, topic: str) -> list[int]:
        metadata = self.consumer.list_topics(topic, timeout=TIMEOUT_S).topics.get(topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            raise ServiceError("kafka", f"topic {topic} does not exist or has no partitions")
        return sorted(metadata.partitions)

    def _resume_points(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        committed = self.consumer.committed(partitions, timeout=TIMEOUT_S)
        start = OFFSET_BEGINNING if self.settings.source.start_at == "earliest" else OFFSET_END
        return [
            TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else start)
            for tp in committed
        ]

    def consume(self) -> list[Any]:
        conf = self.settings.source
        return self.consumer.consume(conf.batch_size, conf.poll_timeout_s)

    def log_error(self, message: Any) -> bool:
        """Log a consume error; True when it only says the partition was read to its end."""
        error = message.error()
        if error.code() == KafkaError._PARTITION_EOF:
            return True
        if error.fatal() or error.code() == KafkaError._FATAL:  # e.g. fenced: our instance id
            raise SourceFailed(_why(error, "the consumer"))
        logger.warning(
            "%s[%s] consume error: %s", message.topic(), message.partition(), error.str()
        )
        return False

    def produce(self, topic: str, value: bytes | None, key: bytes | None, headers: Any) -> None:
        while True:
            try:
                self.producer.produce(topic, value, key, headers=headers)
                return
            except BufferError:  # the local queue is full: let it drain to the broker
                self.producer.poll(0.05)
            except KafkaException as exc:  # fenced, or the producer failed for good
                self._abort_or_fail(exc.args[0])

    def begin(self) -> None:
        self._call(self.producer.begin_transaction)

    def commit(self, offsets: dict[tuple[str, int], int]) -> None:
        """Send the consumed offsets into the transaction and commit it, retrying what the
        broker calls retriable; TransactionAborted after an abort."""
        positions = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        deadline = time.monotonic() + COMMIT_PATIENCE_S
        while True:
            try:
                if positions:
                    metadata = self.consumer.consumer_group_metadata()
                    self.producer.send_offsets_to_transaction(positions, metadata, TIMEOUT_S)
                self.producer.commit_transaction(TIMEOUT_S)
                return
            except KafkaException as exc:
                error = exc.args[0]
                if error.retriable() and time.monotonic() < deadline:
                    logger.warning("transaction commit will be retried: %s", error.str())
                    continue
                self._abort_or_fail(error)

    def _abort_or_fail(self, error: KafkaError) -> None:
        if error.txn_requires_abort():
            logger.warning("transaction aborted: %s", error.str())
            self._call(self.producer.abort_transaction, TIMEOUT_S)
            raise TransactionAborted(error.str())
        raise SourceFailed(_why(error))

    def _call(self, method: Callable[..., Any], *args: Any) -> None:
        try:
            method(*args)
        except KafkaException as exc:
            raise SourceFailed(_why(exc.args[0])) from None

    def rewind(self) -> None:
        """Read again from the committed offsets (after an abort)."""
        assigned = self.consumer.assignment()
        if assigned:
            for tp in self._resume_points(assigned):
                self.consumer.seek(tp)

    def read_changelog(self) -> list[JoinHalf]:
        """The join's waiting halves: the changelog read from its start to its end, the last
        value per key (a tombstone removes)."""
        config = base_config(self.settings.kafka)
        config.update(
            {
                "group.id": f"{self.settings.source.group_id}.restore",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "enable.partition.eof": True,
            }
        )
        reader = Consumer(config)
        reader.assign([TopicPartition(self.changelog_topic, 0, OFFSET_BEGINNING)])
        state: dict[bytes, JoinHalf] = {}
        try:
            _read_to_end(reader, state)
        finally:
            reader.close()
        return list(state.values())

    def abort(self) -> None:
        """Abort an open transaction on the way out (readers need not wait for its timeout);
        a producer that cannot any more leaves it to the next start's init_transactions."""
        try:
            self.producer.abort_transaction(5.0)
        except KafkaException as exc:
            logger.warning("open transaction not aborted at exit: %s", exc.args[0].str())

    def close(self) -> None:
        """Leave the group and flush; a client that already failed is only logged about, so
        the error that stopped the run stays the one reported."""
        for closing in (self.consumer and self.consumer.close, self.producer and self._flush):
            if not closing:
                continue
            try:
                closing()
            except (KafkaException, RuntimeError) as exc:
                logger.warning("from-topic client not closed cleanly: %s", exc)

    def _flush(self) -> None:
        self.producer.flush(TIMEOUT_S)


def _read_to_end(reader: Any, state: dict[bytes, JoinHalf]) -> None:
    deadline = time.monotonic() + 10 * TIMEOUT_S
    while time.monotonic() < deadline:
        for message in reader.consume(1000, 1.0):
            error = message.error()
            if error is not None and error.code() == KafkaError._PARTITION_EOF:
                return
            if error is not None:
                raise ServiceError("kafka", f"reading the join changelog: {error.str()}")
            if message.value() is None:
                state.pop(message.key(), None)
            else:
                state[message.key()] = decode_join_half(message.value())
    raise ServiceError("kafka", "the join changelog was not read to its end in time")


_FENCED = (
    KafkaError._FENCED,
    KafkaError.FENCED_INSTANCE_ID,
    KafkaError.PRODUCER_FENCED,
    KafkaError.INVALID_PRODUCER_EPOCH,
)


def _why(error: KafkaError, client: str = "the transactional producer") -> str:
    if error.code() in _FENCED or "fenced" in error.str().lower():
        return "fenced: another process runs with the same source.instance_id"
    return f"{client} failed ({error.str()}); restart to resume exactly once"
