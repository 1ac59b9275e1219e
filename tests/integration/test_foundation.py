"""The parts are real: a real Apache Kafka broker and a real S3 API server answer."""

from __future__ import annotations

import asyncio
import io
from collections import defaultdict
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shadow.objectstore import open_store
from shadow.settings import StoreSettings

pytestmark = pytest.mark.integration


def test_ten_thousand_keyed_messages_round_trip_in_key_order(
    unique_topic: Any, unique_group: str, make_producer: Any, make_consumer: Any
) -> None:
    topic = unique_topic(partitions=3)
    producer = make_producer(**{"linger.ms": 5})
    for i in range(10_000):
        producer.produce(topic, key=f"k{i % 97}", value=str(i).encode())
    assert producer.flush(30) == 0

    consumer = make_consumer(unique_group)
    consumer.subscribe([topic])
    seen: dict[str, list[int]] = defaultdict(list)
    partitions_of_key: dict[str, set[int]] = defaultdict(set)
    total = 0
    for _ in range(200):
        for message in consumer.consume(num_messages=1000, timeout=1.0):
            assert message.error() is None
            key = message.key().decode()
            seen[key].append(int(message.value()))
            partitions_of_key[key].add(message.partition())
            total += 1
        if total >= 10_000:
            break

    assert total == 10_000
    assert len({p for parts in partitions_of_key.values() for p in parts}) == 3
    for key, values in seen.items():
        assert values == sorted(values), f"order of key {key} not kept"
        assert len(partitions_of_key[key]) == 1


def test_aiokafka_talks_to_the_same_broker(kafka_bootstrap: str, unique_topic: Any) -> None:
    """The monitor's client (aiokafka, under faust-streaming) works with the chosen broker."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    topic = unique_topic(partitions=1)

    async def round_trip() -> list[bytes]:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            for i in range(5):
                await producer.send_and_wait(topic, f"m{i}".encode(), key=b"k")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            batch = await consumer.getmany(timeout_ms=10_000, max_records=5)
        finally:
            await consumer.stop()
        return [m.value for records in batch.values() for m in records]

    assert asyncio.run(round_trip()) == [f"m{i}".encode() for i in range(5)]


def test_object_round_trip_through_boto3_and_pyarrow(
    s3_client: Any, s3_bucket: str, s3_store: dict[str, Any]
) -> None:
    store = open_store(StoreSettings(**s3_store))
    store.put("a/b.bin", b"hello shadow")

    body = s3_client.get_object(Bucket=s3_bucket, Key="shadow/a/b.bin")["Body"].read()
    assert body == b"hello shadow"

    fs, root = store.arrow()
    with fs.open_input_stream(f"{root}/a/b.bin") as stream:
        assert stream.read() == b"hello shadow"
    assert store.list("a") == ["a/b.bin"]
    assert store.exists("a/b.bin") and not store.exists("a/c.bin")


def test_parquet_round_trip_through_the_s3_endpoint(s3_store: dict[str, Any]) -> None:
    store = open_store(StoreSettings(**s3_store))
    table = pa.table({"txn_id": ["t1", "t2", "t3"], "score": [0.1, 0.5, 0.9]})
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    store.put("predictions/date=2026-01-01/x.parquet", sink.getvalue())

    fs, root = store.arrow()
    read = pq.read_table(f"{root}/predictions/date=2026-01-01/x.parquet", filesystem=fs)
    assert read.equals(table)


def test_create_bucket_is_idempotent(s3_store: dict[str, Any]) -> None:
    from shadow.objectstore import S3Store

    settings = StoreSettings(**{**s3_store, "uri": "s3://made-by-shadow/x"})
    store = S3Store(settings)
    store.create_bucket()
    store.create_bucket()
    store.put("k", b"v")
    assert store.get("k") == b"v"


def test_missing_bucket_is_a_terminal_one_line_error(s3_store: dict[str, Any]) -> None:
    from shadow.errors import BucketNotFound

    store = open_store(StoreSettings(**{**s3_store, "uri": "s3://no-such-bucket-here/x"}))
    with pytest.raises(BucketNotFound) as caught:
        store.put("k", b"v")
    assert caught.value.transient is False
    assert "create it or fix store.uri" in str(caught.value)
