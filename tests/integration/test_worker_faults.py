"""Worker faults on dedicated services: the S3 API down for 30 s, the broker restarted mid-run."""

from __future__ import annotations

import time
from pathlib import Path

import boto3
import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from worker_support import (
    WorkerThread,
    all_committed,
    assert_exactly_once,
    committed,
    envelopes,
    produce,
    read_objects,
    rows,
    static_candidates,
    wait_until,
)

from consumers.worker import ShadowWorker
from shadow.kit.dev.kafka import LocalKafka
from shadow.kit.dev.s3 import LocalS3
from shadow.objectstore import open_store
from shadow.settings import Settings, load_settings

pytestmark = pytest.mark.integration

WORKER = {"flush_records": 1000, "flush_seconds": 1.0, "batch_size": 300, "http_port": 0}
OUTAGE_S = 30


def _bucket(endpoint: str, name: str) -> None:
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=name)


def test_s3_down_for_30s_commits_nothing_meanwhile_and_loses_nothing(
    kafka_bootstrap, unique_topic, unique_group, settings_for, tmp_path: Path
) -> None:
    s3 = LocalS3(Path(), tmp_path / "s3")
    endpoint = s3.start().bootstrap
    try:
        _bucket(endpoint, "outage")
        topic = unique_topic(3)
        store = {
            "uri": "s3://outage/shadow",
            "endpoint_url": endpoint,
            "access_key_id": "testing",
            "secret_access_key": "testing",
        }
        settings = settings_for(
            kafka={"topic": topic}, worker={**WORKER, "group_id": unique_group}, store=store
        )
        before, during = envelopes(6000, seed=11)[:3000], envelopes(6000, seed=11)[3000:]
        produce(kafka_bootstrap, topic, before)
        worker = ShadowWorker(settings, static_candidates(settings))
        running = WorkerThread(worker).start()
        done = all_committed(kafka_bootstrap, unique_group, topic, 3)
        wait_until(done, 60, "the first half committed")
        kept = read_objects(open_store(settings.store))  # moto forgets everything on restart

        s3.halt()
        produce(kafka_bootstrap, topic, during)
        at_halt = committed(kafka_bootstrap, unique_group, topic, 3)
        deadline = time.monotonic() + OUTAGE_S
        while time.monotonic() < deadline:
            time.sleep(5)
            assert committed(kafka_bootstrap, unique_group, topic, 3) == at_halt
        assert worker.paused, "no partition was paused while the store was down"
        assert worker.assigned == {0, 1, 2}, "the worker left its group during the outage"

        s3.resume()
        _bucket(endpoint, "outage")
        wait_until(done, 90, "everything committed after the outage")
        assert not worker.paused
        running.stop()
        after = read_objects(open_store(settings.store))
    finally:
        s3.stop()
    table = rows(list(kept.values()) + list(after.values()))
    txns = {k.decode() for k, _ in before + during}
    assert assert_exactly_once(table, txns, {"amount@1", "fraud@7"}) == 0


def test_broker_restarted_mid_run_loses_nothing(unique_group, tmp_path: Path) -> None:
    defaults = Settings().kafka
    kafka = LocalKafka(defaults.dev_version, defaults.dev_home, tmp_path / "kafka")
    bootstrap = kafka.start().bootstrap
    try:
        topic = "restart"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(30)
        settings = load_settings(
            kafka={"bootstrap_servers": bootstrap, "topic": topic},
            worker={**WORKER, "group_id": unique_group},
            store={"uri": str(tmp_path / "store")},
        )
        records = envelopes(9000, seed=13)
        produce(bootstrap, topic, records[:6000])
        worker = ShadowWorker(settings, static_candidates(settings))
        running = WorkerThread(worker).start()
        wait_until(
            lambda: sum(committed(bootstrap, unique_group, topic, 3).values()) >= 1000,
            60,
            "a first commit",
        )
        kafka.halt()
        time.sleep(5)
        kafka.resume()
        produce(bootstrap, topic, records[6000:])
        wait_until(all_committed(bootstrap, unique_group, topic, 3), 120, "all committed")
        running.stop()
    finally:
        kafka.stop()
    table = rows(list(read_objects(open_store(settings.store)).values()))
    duplicates = assert_exactly_once(
        table, {k.decode() for k, _ in records}, {"amount@1", "fraud@7"}
    )
    print(f"raw duplicate rows after a broker restart: {duplicates}")
