"""Sample datasets - write predictions, features and labels in the documented layout, vectorised.

For tests, the bench and the notebook: known score arrays in, Parquet objects out, keyed with
`batch_key` exactly as the worker writes them (one object per partition batch).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from shadow.predictions import (
    DECISION_ALERT,
    DECISION_PASS,
    FEATURE_KEY_COLUMNS,
    FEATURES,
    LABEL_SCHEMA,
    PREDICTION_SCHEMA,
    PREDICTIONS,
    ROLE_CANDIDATE,
    ROLE_LIVE,
    batch_key,
    labels_key,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from shadow.objectstore import ObjectStore

TOPIC = "shadow.transactions"


@dataclass
class ModelScores:
    """One model's scores for every transaction; NaN means the model failed on it."""

    model_id: str
    scores: np.ndarray
    role: str = ROLE_CANDIDATE
    threshold: float = 0.5
    latency_us: np.ndarray | None = None
    skip: np.ndarray | None = field(default=None, repr=False)
    """Boolean mask of transactions this model has no row for (not scored at all)."""
    nan_scores: bool = False
    """Write a failure as a NaN score (a model that returned NaN), not as an error row."""

    def head(self, n: int) -> ModelScores:
        """The same model on the first n transactions only."""
        return ModelScores(
            self.model_id,
            self.scores[:n],
            self.role,
            self.threshold,
            None if self.latency_us is None else self.latency_us[:n],
            None if self.skip is None else self.skip[:n],
        )


def txn_ids(n: int, prefix: str = "t") -> np.ndarray:
    """n distinct transaction ids."""
    return np.char.add(prefix, np.arange(n).astype(str)).astype(object)


def write_predictions(
    store: ObjectStore,
    ids: np.ndarray,
    event_time_ms: np.ndarray,
    models: list[ModelScores],
    *,
    batch_txns: int = 20_000,
    partitions: int = 3,
    topic: str = TOPIC,
    written_ms: int = 0,
) -> int:
    """Write one object per batch of `batch_txns` transactions; returns the rows written.
    `written_ms`: how long after each event its rows were scored (scored_at)."""
    offsets = [0] * partitions
    rows = 0
    for number, begin in enumerate(range(0, len(ids), batch_txns)):
        part = number % partitions
        window = slice(begin, begin + batch_txns)
        table = _prediction_batch(
            ids[window], event_time_ms[window], models, window, (part, offsets[part]), written_ms
        )
        key = batch_key(PREDICTIONS, topic, part, offsets[part], int(event_time_ms[begin]))
        store.put(key, _parquet(table))
        offsets[part] += len(ids[window])
        rows += table.num_rows
    return rows


def _prediction_batch(
    ids: np.ndarray,
    times: np.ndarray,
    models: list[ModelScores],
    window: slice,
    position: tuple[int, int],
    written_ms: int = 0,
) -> pa.Table:
    import pyarrow as pa

    n = len(ids)
    partition, offset = position
    offsets = np.arange(offset, offset + n, dtype=np.int64)
    parts: list[pa.Table] = []
    for model in models:
        keep = np.ones(n, bool) if model.skip is None else ~model.skip[window]
        scores = model.scores[window][keep]
        failed = np.isnan(scores)
        latency = model.latency_us[window][keep] if model.latency_us is not None else None
        decision = np.where(scores >= model.threshold, DECISION_ALERT, DECISION_PASS)
        count = int(keep.sum())
        columns = {
            "txn_id": pa.array(ids[keep], pa.string()),
            "event_time": pa.array(times[keep], pa.timestamp("ms", tz="UTC")),
            "model_id": _repeat_dict(model.model_id, count, pa.int32()),
            "role": _repeat_dict(model.role, count, pa.int8()),
            "score": pa.array(scores, mask=None if model.nan_scores else failed),
            "decision": pa.array(decision.astype(object), pa.string(), mask=failed),
            "latency_us": pa.array(
                np.zeros(count, np.float32) if latency is None else latency, pa.float32()
            ),
            "request_latency_us": _request_latency(model.role, latency, count),
            "error": pa.array(
                # numpy's stubs take no None branch; an object array of text and None is meant
                np.where(failed & (not model.nan_scores), "model failed", None),  # type: ignore[call-overload]
                pa.string(),
            ),
            "kafka_partition": pa.array(np.full(count, partition, np.int32)),
            "kafka_offset": pa.array(offsets[keep]),
            "scored_at": pa.array((times[keep] + written_ms) * 1000, pa.timestamp("us", tz="UTC")),
            "worker_id": _repeat_dict("sample-worker", count, pa.int32()),
        }
        parts.append(pa.table(columns, schema=PREDICTION_SCHEMA))
    return pa.concat_tables(parts)


def _request_latency(role: str, latency: np.ndarray | None, count: int) -> pa.Array:
    """As the worker writes it: the live rows' own latency; for a candidate one probe, on the
    batch's first row (here 10x its per-row cost: a single transaction pays the call's
    overhead alone)."""
    import pyarrow as pa

    if latency is None or not count:
        return pa.nulls(count, pa.float32())
    if role == ROLE_LIVE:
        return pa.array(latency, pa.float32())
    return pa.array([float(latency[0]) * 10] + [None] * (count - 1), pa.float32())


def _repeat_dict(value: str, count: int, index_type: pa.DataType) -> pa.Array:
    import pyarrow as pa

    indices = pa.array(np.zeros(count, dtype=index_type.to_pandas_dtype()), index_type)
    return pa.DictionaryArray.from_arrays(indices, pa.array([value]))


def write_features(
    store: ObjectStore,
    ids: np.ndarray,
    event_time_ms: np.ndarray,
    columns: Mapping[str, np.ndarray],
    *,
    batch_txns: int = 20_000,
    topic: str = TOPIC,
) -> None:
    """Write the features dataset beside the predictions (same batch keys)."""
    import pyarrow as pa

    key_schema = pa.schema(FEATURE_KEY_COLUMNS)
    for number, begin in enumerate(range(0, len(ids), batch_txns)):
        window = slice(begin, begin + batch_txns)
        table = pa.table(
            {
                "txn_id": pa.array(ids[window], pa.string()),
                "event_time": pa.array(event_time_ms[window], pa.timestamp("ms", tz="UTC")),
            },
            schema=key_schema,
        )
        for name, values in columns.items():
            table = table.append_column(name, pa.array(values[window]))
        key = batch_key(FEATURES, topic, number % 3, begin, int(event_time_ms[begin]))
        store.put(key, _parquet(table))


def write_labels(
    store: ObjectStore,
    ids: np.ndarray,
    labels: np.ndarray,
    amounts: np.ndarray | None = None,
    *,
    name: str = "labels",
    date: str = "2026-01-01",
) -> None:
    """Write one labels object (late-arriving ground truth)."""
    import pyarrow as pa

    table = pa.table(
        {
            "txn_id": pa.array(ids, pa.string()),
            "label": pa.array(np.asarray(labels, np.int8)),
            "amount": pa.array(amounts if amounts is not None else np.ones(len(ids))),
            "label_time": pa.array(np.zeros(len(ids), np.int64), pa.timestamp("ms", tz="UTC")),
        },
        schema=LABEL_SCHEMA,
    )
    store.put(labels_key(name, date), _parquet(table))


def _parquet(table: pa.Table) -> bytes:
    """Parquet bytes exactly as the worker writes them (encodings, footer)."""
    from shadow.prediction_store import parquet_bytes

    return parquet_bytes(table)


@dataclass
class Scenario:
    """Transactions with a live model, labels, amounts and a merchant category."""

    ids: np.ndarray
    event_time_ms: np.ndarray
    live: np.ndarray
    labels: np.ndarray
    amounts: np.ndarray
    merchant_category: np.ndarray
    signal: np.ndarray
    rng: np.random.Generator

    def candidate(self, noise: float, shift: float = 0.0) -> np.ndarray:
        """A candidate that sees the same signal with its own noise, optionally shifted."""
        logit = self.signal + self.rng.normal(0, noise, len(self.ids)) + shift
        return 1 / (1 + np.exp(-logit))

    def random_model(self) -> np.ndarray:
        return self.rng.random(len(self.ids))


def scenario(n: int, seed: int = 1, start_ms: int = 1_767_225_600_000, hours: float = 24.0):
    """n transactions spread over `hours` from start_ms (2026-01-01 UTC), about 2 % fraud."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.02).astype(np.int8)
    signal = rng.normal(-4.0, 1.0, n) + 3.0 * labels
    live = 1 / (1 + np.exp(-(signal + rng.normal(0, 0.8, n))))
    times = start_ms + np.sort(rng.integers(0, int(hours * 3_600_000), n))
    categories = np.array(["grocery", "travel", "electronics", "fuel", "online"], dtype=object)
    return Scenario(
        ids=txn_ids(n),
        event_time_ms=times.astype(np.int64),
        live=live,
        labels=labels,
        amounts=np.round(rng.lognormal(3.5, 1.0, n), 2),
        merchant_category=categories[rng.integers(0, len(categories), n)],
        signal=signal,
        rng=rng,
    )
