"""PredictionStore - scored batches -> one Arrow table -> Parquet bytes -> one whole-object put.

The writer side of the predictions dataset (shadow.predictions holds the schema and layout).
Rows are built column-wise per consumed chunk, so a flush only concatenates and encodes.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from shadow.feature_columns import concat_features, features_table
from shadow.predictions import (
    DECISION_ALERT,
    DECISION_PASS,
    FEATURES,
    PREDICTION_SCHEMA,
    PREDICTIONS,
    ROLE_CANDIDATE,
    ROLE_LIVE,
    batch_key,
    with_models,
)

if TYPE_CHECKING:
    from shadow.envelope import Envelope
    from shadow.objectstore import ObjectStore

logger = logging.getLogger(__name__)

__all__ = ["ChunkKeys", "ModelScores", "PredictionStore", "chunk_keys", "features_table"]


@dataclass(frozen=True)
class ModelScores:
    """One candidate's answer for one consumed chunk: scores, or the error that replaced them."""

    model_id: str
    threshold: float
    scores: np.ndarray | None
    latency_us: float
    error: str | None = None
    request_latency_us: float | None = None
    """The single-transaction probe of the chunk's first row (see PREDICTION_SCHEMA)."""

    def sliced(self, start: int, stop: int) -> ModelScores:
        scores = None if self.scores is None else self.scores[start:stop]
        probe = self.request_latency_us if start == 0 else None  # it belongs to row 0
        return ModelScores(
            self.model_id, self.threshold, scores, self.latency_us, self.error, probe
        )


@dataclass(frozen=True)
class ChunkKeys:
    """The columns every model's rows of a chunk share, built once."""

    txn_id: pa.Array
    event_time: pa.Array
    kafka_offset: pa.Array
    partition: int
    scored_at_us: int
    worker_id: str

    def __len__(self) -> int:
        return len(self.txn_id)


def chunk_keys(
    envelopes: Sequence[Envelope],
    offsets: Sequence[int],
    partition: int,
    worker_id: str,
    scored_at_us: int,
) -> ChunkKeys:
    """The shared columns of a chunk of envelopes read from one partition."""
    return ChunkKeys(
        txn_id=pa.array([e.txn_id for e in envelopes], pa.string()),
        event_time=pa.array([e.event_time for e in envelopes], pa.int64()).cast(
            PREDICTION_SCHEMA.field("event_time").type
        ),
        kafka_offset=pa.array(offsets, pa.int64()),
        partition=partition,
        scored_at_us=scored_at_us,
        worker_id=worker_id,
    )


def prediction_table(
    keys: ChunkKeys, envelopes: Sequence[Envelope], results: Sequence[ModelScores]
) -> pa.Table:
    """Long-format rows of a chunk: one per (transaction, candidate) plus the live row."""
    parts = [_candidate_rows(keys, result) for result in results]
    parts.append(_live_rows(keys, envelopes))
    return pa.concat_tables(parts)


def _candidate_rows(keys: ChunkKeys, result: ModelScores) -> pa.Table:
    n = len(keys)
    if result.scores is None:
        score = pa.nulls(n, pa.float64())
        decision = pa.nulls(n, pa.string())
        error = pa.array([result.error or "failed"] * n, pa.string())
    else:
        score, decision, error = _scored(np.asarray(result.scores, dtype=np.float64), result)
    latency = pa.array(np.full(n, result.latency_us, dtype=np.float32))
    probe = result.request_latency_us
    request = pa.nulls(n, pa.float32())
    if probe is not None and n:
        request = pa.array([probe] + [None] * (n - 1), pa.float32())
    return _assemble(
        keys, result.model_id, ROLE_CANDIDATE, score, decision, (latency, request), error
    )


NON_FINITE_SCORE = "the model returned a non-finite score for this transaction"


def _scored(values: np.ndarray, result: ModelScores) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Score, decision and error columns; a row the model answered NaN or infinity for (its
    input had a gap the model does not handle) is an error row, not the batch."""
    alerts = values >= result.threshold
    decision = np.where(alerts, DECISION_ALERT, DECISION_PASS)
    bad = ~np.isfinite(values)
    if not bad.any():
        return (
            pa.array(values, pa.float64()),
            pa.array(decision, pa.string()),
            pa.nulls(len(values), pa.string()),
        )
    # numpy's stubs take no None branch; an object array of text and None is meant
    errors = np.where(bad, NON_FINITE_SCORE, None)  # type: ignore[call-overload]
    return (
        pa.array(values, pa.float64(), mask=bad),
        pa.array(decision, pa.string(), mask=bad),
        pa.array(errors, pa.string()),
    )


def _live_rows(keys: ChunkKeys, envelopes: Sequence[Envelope]) -> pa.Table:
    n = len(keys)
    models = pa.array([e.live.model_id for e in envelopes], pa.string()).dictionary_encode()
    score = pa.array([e.live.score for e in envelopes], pa.float64())
    decision = pa.array([e.live.decision for e in envelopes], pa.string())
    latency = pa.array([e.live.latency_ms * 1000.0 for e in envelopes], pa.float32())
    errors = pa.nulls(n, pa.string())
    return _assemble(keys, models, ROLE_LIVE, score, decision, (latency, latency), errors)


def _assemble(
    keys: ChunkKeys,
    model_id: str | pa.DictionaryArray,
    role: str,
    score: pa.Array,
    decision: pa.Array,
    latencies: tuple[pa.Array, pa.Array],
    error: pa.Array,
) -> pa.Table:
    n = len(keys)
    fields = {f.name: f.type for f in PREDICTION_SCHEMA}
    columns = [
        keys.txn_id,
        keys.event_time,
        _model_column(model_id, n, fields["model_id"]),
        _constant(role, n, fields["role"]),
        score,
        decision,
        *latencies,
        error,
        pa.array(np.full(n, keys.partition, dtype=np.int32)),
        keys.kafka_offset,
        pa.array(np.full(n, keys.scored_at_us, dtype=np.int64)).cast(fields["scored_at"]),
        _constant(keys.worker_id, n, fields["worker_id"]),
    ]
    return pa.Table.from_arrays(columns, schema=PREDICTION_SCHEMA)


def _model_column(model_id: str | pa.DictionaryArray, n: int, kind: pa.DataType) -> pa.Array:
    if isinstance(model_id, str):
        return _constant(model_id, n, kind)
    return model_id.cast(kind)


def _constant(value: str, n: int, kind: pa.DictionaryType) -> pa.DictionaryArray:
    indices = pa.array(np.zeros(n, dtype=kind.index_type.to_pandas_dtype()), kind.index_type)
    return pa.DictionaryArray.from_arrays(indices, pa.array([value], pa.string()))


def parquet_bytes(table: pa.Table) -> bytes:
    """The table as one Parquet file in memory: zstd, dictionary pages on the string columns
    whose values repeat, and a predictions table's models in the footer (MODELS_KEY)."""
    sink = io.BytesIO()
    pq.write_table(
        with_models(table), sink, compression="zstd", use_dictionary=_dictionary_columns(table)
    )
    return sink.getvalue()


def _dictionary_columns(table: pa.Table) -> list[str] | bool:
    """String columns, each written as a dictionary: the analysis reads them faster (its scan
    of 10 M prediction rows took 0.55 s instead of 0.75 s) and a flush encodes faster. txn_id
    repeats in predictions (a row per model), not in features, where a dictionary of unique
    values would only add bytes."""
    strings = [
        f.name
        for f in table.schema
        if pa.types.is_string(f.type)
        or pa.types.is_large_string(f.type)
        or pa.types.is_dictionary(f.type)
    ]
    if "model_id" not in table.column_names:
        strings = [name for name in strings if name != "txn_id"]
    return strings or False


class PredictionStore:
    """Writes a partition batch's rows as one object whose key depends only on its first offset."""

    def __init__(self, store: ObjectStore, topic: str, store_features: bool = False) -> None:
        self.store = store
        self.topic = topic
        self.store_features = store_features

    def write(
        self,
        partition: int,
        first_offset: int,
        first_event_ms: int,
        tables: Sequence[pa.Table],
        features: Sequence[pa.Table] = (),
    ) -> str:
        """Put the batch (features first, so predictions never point at absent features)."""
        if self.store_features and features:
            data = parquet_bytes(concat_features(features))
            key = batch_key(FEATURES, self.topic, partition, first_offset, first_event_ms)
            self.store.put(key, data)
        table = pa.concat_tables(tables)
        key = batch_key(PREDICTIONS, self.topic, partition, first_offset, first_event_ms)
        self.store.put(key, parquet_bytes(table))
        logger.debug("wrote %s (%d rows)", key, table.num_rows)
        return key
