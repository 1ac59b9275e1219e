"""Rebalances: a commit the group refuses while partitions move is not a store failure, the
object already written is never written again, and the group settings hand partitions over
quickly (the figures: `python -m bench.worker_throughput --processes 1,2`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka import TopicPartition
from worker_fakes import (
    TOPIC,
    CollectingProducer,
    FakeConsumer,
    MemoryStore,
    attached_worker,
    candidate_set,
    messages_of,
    tiny_candidate,
)

from consumers.kafka import consumer_config
from shadow.envelope import LiveScore, encode, make_envelope
from shadow.settings import load_settings

LIVE = LiveScore("fraud@7", 0.2, "pass", 1.0)
GOOD = {"amount": 12.5, "merchant_category": "5411", "device_risk": 0.1, "ip_risk": 0.2}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> list:
    return [tiny_candidate(Path(tmp_path_factory.mktemp("models")), "columns", "cols@1")]


def _messages(n: int) -> list:
    records = []
    for i in range(n):
        e = make_envelope(f"t-{i}", dict(GOOD), LIVE, 1_767_225_600_000 + i)
        records.append((0, e.txn_id.encode(), encode(e)))
    return messages_of(records)


def test_a_commit_refused_on_revoke_is_a_commit_failure_and_the_object_is_written_once(
    models, caplog
) -> None:
    settings = load_settings(kafka={"topic": TOPIC}, worker={"flush_records": 1000})
    consumer = FakeConsumer(_messages(4), fail_commits=1)  # the group is rebalancing
    store, producer = MemoryStore(), CollectingProducer()
    worker = attached_worker(settings, candidate_set(settings, models), store, consumer, producer)
    worker.step()
    with caplog.at_level("WARNING"):
        worker._on_revoke(consumer, [TopicPartition(TOPIC, 0)])
    assert consumer.committed == {}  # the next owner replays from the last commit
    assert len(store.puts) == len(set(store.puts)) == 1  # into the same key: no duplicate
    assert worker.metrics.commit_failures._value.get() == 1
    assert worker.metrics.flush_failures._value.get() == 0  # the store did not fail
    assert "commit refused on revoke" in caplog.text
    assert "ERROR" not in caplog.text


def test_the_group_settings_notice_a_rebalance_within_a_heartbeat_of_300_ms() -> None:
    settings = load_settings(kafka={"topic": TOPIC, "bootstrap_servers": "127.0.0.1:1"})
    config = consumer_config(settings, "w-1")
    assert config["partition.assignment.strategy"] == "cooperative-sticky"
    assert config["heartbeat.interval.ms"] == 300
    assert config["session.timeout.ms"] == 15_000
    assert config["enable.auto.commit"] is False and config["enable.auto.offset.store"] is False
    custom = settings.model_copy(
        update={
            "worker": settings.worker.model_copy(
                update={"consumer_config": {"heartbeat.interval.ms": 1000}}
            )
        }
    )
    assert consumer_config(custom, "w-1")["heartbeat.interval.ms"] == 1000
