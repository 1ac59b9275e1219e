"""Predictions dataset - the one Arrow schema and object layout of raw predictions and labels.

Hive-style partitions so DuckDB, Spark, Trino and Athena read it as is::

    predictions/date=YYYY-MM-DD/<topic>+<partition>+<first offset, 20 digits>.parquet
    features/date=YYYY-MM-DD/<topic>+<partition>+<first offset, 20 digits>.parquet
    labels/date=YYYY-MM-DD/<name>.parquet

Long format: one row per (transaction, model); the live model's own score is a row with role
``live``. The worker writes each scored chunk model after model, every model's rows in the
chunk's transaction order, and lists the object's models in its footer (MODELS_KEY): the
analysis then pairs rows by position without a scan (any other layout is read correctly, by a
slower path). Readers dedupe on (txn_id, model_id): a batch replayed after a crash has the same key,
and a zombie writer after a rebalance may have written the same rows under another key.
"""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa

from shadow import modelcard

PREDICTIONS = "predictions"
FEATURES = "features"
LABELS = "labels"

ROLE_LIVE = "live"
ROLE_CANDIDATE = "candidate"

# the decision values are the model card's (shadow.modelcard), defined once
DECISION_ALERT = modelcard.DECISION_ALERT
DECISION_PASS = modelcard.DECISION_PASS

PREDICTION_SCHEMA = pa.schema(
    [
        pa.field("txn_id", pa.string(), nullable=False),
        pa.field("event_time", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("model_id", pa.dictionary(pa.int32(), pa.string()), nullable=False),
        pa.field("role", pa.dictionary(pa.int8(), pa.string()), nullable=False),
        pa.field("score", pa.float64()),
        pa.field("decision", pa.string()),
        pa.field("latency_us", pa.float32()),
        pa.field("request_latency_us", pa.float32()),
        pa.field("error", pa.string()),
        pa.field("kafka_partition", pa.int32(), nullable=False),
        pa.field("kafka_offset", pa.int64(), nullable=False),
        pa.field("scored_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("worker_id", pa.dictionary(pa.int32(), pa.string()), nullable=False),
    ]
)
"""One row per (transaction, model). score is null when error is set. latency_us is the
model's batch wall time divided by the batch's rows for candidates (a cost per transaction), the
live service's own measurement for the live row. request_latency_us is a single-request latency:
the live row's own (= latency_us); for a candidate, set on the first row of a scored chunk at most
once per worker.probe_seconds, the time the worker took to score that one transaction alone
(features + inference), and null on the others. Files written before it existed read it as null."""

LABEL_SCHEMA = pa.schema(
    [
        pa.field("txn_id", pa.string(), nullable=False),
        pa.field("label", pa.int8(), nullable=False),
        pa.field("amount", pa.float64()),
        pa.field("label_time", pa.timestamp("ms", tz="UTC")),
    ]
)
"""Late-arriving ground truth: 1 = fraud (chargeback, confirmed), 0 = genuine."""

FEATURE_KEY_COLUMNS = [
    pa.field("txn_id", pa.string(), nullable=False),
    pa.field("event_time", pa.timestamp("ms", tz="UTC"), nullable=False),
]
"""The features dataset: these columns, then one column per feature (types as they came)."""


def partition_date(event_time_ms: int) -> str:
    """The date= partition value of a batch, from its first record's event time (UTC)."""
    return dt.datetime.fromtimestamp(event_time_ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d")


def batch_key(
    dataset: str, topic: str, partition: int, first_offset: int, event_time_ms: int
) -> str:
    """Object key of a batch, relative to the store root.

    It depends only on where the batch starts, so a batch replayed after a crash overwrites
    its own object instead of adding a second one.
    """
    date = partition_date(event_time_ms)
    return f"{dataset}/date={date}/{topic}+{partition}+{first_offset:020d}.parquet"


def labels_key(name: str, event_date: str) -> str:
    """Object key of one labels file."""
    return f"{LABELS}/date={event_date}/{name}.parquet"


MODELS_KEY = b"shadow.models"
"""Parquet key-value metadata of a predictions object: a JSON list of its [model_id, role]
pairs, so a reader learns the models of a window from the footers, without a scan."""


def with_models(table: pa.Table) -> pa.Table:
    """The predictions table with its (model_id, role) pairs in the schema metadata (written
    into the Parquet footer); other tables as they are."""
    if "model_id" not in table.column_names or "role" not in table.column_names:
        return table
    models = sorted({pair for batch in table.to_batches() for pair in _batch_models(batch)})
    metadata = {**(table.schema.metadata or {}), MODELS_KEY: json.dumps(models).encode()}
    return table.replace_schema_metadata(metadata)


def _batch_models(batch: pa.RecordBatch) -> set[tuple[str, str]]:
    """The (model_id, role) pairs of one batch: a model's block is dictionary-encoded with
    one value (no scan); other columns are grouped."""
    columns = [batch.column("model_id"), batch.column("role")]
    if not len(batch):
        return set()
    if all(pa.types.is_dictionary(c.type) and len(c.dictionary) == 1 for c in columns):
        return {(str(columns[0].dictionary[0]), str(columns[1].dictionary[0]))}
    pairs = pa.table([c.cast(pa.string()) for c in columns], names=["model_id", "role"])
    grouped = pairs.group_by(["model_id", "role"]).aggregate([])
    return set(zip(*(grouped.column(c).to_pylist() for c in ("model_id", "role")), strict=True))


def models_of(value: bytes | None) -> list[tuple[str, str]] | None:
    """The [model_id, role] pairs of one object's MODELS_KEY value; None when it has none or
    it is not such a list (another writer's): then the reader scans."""
    if value is None:
        return None
    try:
        return [(str(model), str(role)) for model, role in json.loads(value)]
    except (ValueError, TypeError):
        return None
