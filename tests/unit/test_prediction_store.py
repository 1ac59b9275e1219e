"""Prediction store writer: rows, schema, Parquet bytes, keys that depend only on the start."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from shadow.envelope import LiveScore, make_envelope
from shadow.objectstore import LocalStore
from shadow.prediction_store import (
    ModelScores,
    PredictionStore,
    chunk_keys,
    features_table,
    parquet_bytes,
    prediction_table,
)
from shadow.predictions import MODELS_KEY, PREDICTION_SCHEMA

EVENT_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def _envelopes(n: int) -> list:
    live = LiveScore("fraud@7", 0.25, "pass", 3.5)
    return [
        make_envelope(f"t{i}", {"amount": float(i), "mcc": "5411"}, live, EVENT_MS + i)
        for i in range(n)
    ]


def _table(n: int = 4, results: list[ModelScores] | None = None):
    envelopes = _envelopes(n)
    keys = chunk_keys(envelopes, list(range(100, 100 + n)), 2, "w-1", 1_000_000)
    results = results or [
        ModelScores("lr@1", 0.5, np.array([0.1, 0.6, 0.5, 0.2]), 12.5),
        ModelScores("bad@1", 0.5, None, 0.0, "model bad@1: boom"),
    ]
    return prediction_table(keys, envelopes, results), envelopes, keys


def test_rows_per_model_and_live_row() -> None:
    table, _, _ = _table()
    assert table.schema == PREDICTION_SCHEMA
    assert table.num_rows == 4 * 3
    rows = table.to_pylist()
    lr = [r for r in rows if r["model_id"] == "lr@1"]
    assert [r["decision"] for r in lr] == ["pass", "alert", "alert", "pass"]
    assert [r["score"] for r in lr] == [0.1, 0.6, 0.5, 0.2]
    assert {r["latency_us"] for r in lr} == {12.5}
    assert {r["role"] for r in lr} == {"candidate"}
    bad = [r for r in rows if r["model_id"] == "bad@1"]
    assert all(r["score"] is None and r["error"] == "model bad@1: boom" for r in bad)
    live = [r for r in rows if r["role"] == "live"]
    assert [r["model_id"] for r in live] == ["fraud@7"] * 4
    assert {(r["score"], r["decision"], r["latency_us"]) for r in live} == {(0.25, "pass", 3500.0)}
    assert [r["kafka_offset"] for r in live] == [100, 101, 102, 103]
    assert {r["kafka_partition"] for r in rows} == {2}
    assert {r["worker_id"] for r in rows} == {"w-1"}


def _dictionary(data: bytes, name: str) -> bool:
    meta = pq.ParquetFile(io.BytesIO(data)).metadata
    index = meta.schema.to_arrow_schema().get_field_index(name)
    column = meta.row_group(0).column(index)
    assert column.compression == "ZSTD"
    return "RLE_DICTIONARY" in column.encodings or "PLAIN_DICTIONARY" in column.encodings


def test_parquet_roundtrip_is_zstd_with_dictionaries_on_repeated_strings() -> None:
    table, envelopes, keys = _table()
    data = parquet_bytes(table)
    for name in ("txn_id", "model_id", "role", "decision", "worker_id"):  # a row per model
        assert _dictionary(data, name), name
    assert not _dictionary(data, "score") and not _dictionary(data, "kafka_offset")
    features = parquet_bytes(features_table(keys, envelopes))
    assert _dictionary(features, "mcc") and not _dictionary(features, "txn_id")  # unique
    back = pq.read_table(io.BytesIO(data))
    assert back.num_rows == 12
    assert back.column("txn_id").to_pylist() == table.column("txn_id").to_pylist()


def test_write_key_depends_on_first_offset_and_replay_overwrites(tmp_path) -> None:
    store = LocalStore(tmp_path)
    writer = PredictionStore(store, "shadow.transactions", store_features=True)
    table, envelopes, keys = _table()
    features = features_table(keys, envelopes)
    key = writer.write(2, 100, EVENT_MS, [table], [features])
    assert key == "predictions/date=2026-01-01/shadow.transactions+2+00000000000000000100.parquet"
    again = writer.write(2, 100, EVENT_MS, [table, table], [features])
    assert again == key
    assert store.list("predictions") == [key]
    assert pq.read_table(io.BytesIO(store.get(key))).num_rows == 24
    stored = pq.read_table(io.BytesIO(store.get(key.replace("predictions/", "features/"))))
    assert stored.column_names == ["txn_id", "event_time", "amount", "mcc"]
    assert stored.column("amount").to_pylist() == [0.0, 1.0, 2.0, 3.0]


def test_the_footer_lists_every_model_and_role_of_the_object() -> None:
    table, envelopes, keys = _table()
    switched = [  # the live model changed inside the chunk: two live models in one block
        make_envelope(e.txn_id, e.features, LiveScore("fraud@8", 0.3, "pass", 2.0), EVENT_MS)
        if i % 2
        else e
        for i, e in enumerate(envelopes)
    ]
    second = prediction_table(keys, switched, [ModelScores("lr@1", 0.5, np.zeros(4), 1.0)])
    data = parquet_bytes(pa.concat_tables([table, second]))
    listed = json.loads(pq.read_metadata(io.BytesIO(data)).metadata[MODELS_KEY])
    assert listed == [
        ["bad@1", "candidate"],
        ["fraud@7", "live"],
        ["fraud@8", "live"],
        ["lr@1", "candidate"],
    ]
    features = parquet_bytes(features_table(keys, envelopes))
    assert MODELS_KEY not in (pq.read_metadata(io.BytesIO(features)).metadata or {})


def test_stored_features_pass_the_card_guard() -> None:
    from shadow.redaction import Redactor
    from shadow.settings import TapSettings

    live = LiveScore("fraud@7", 0.25, "pass", 3.5)
    feats = [
        {"amount": 1.0, "note": "card 4111 1111 1111 1111", "PAN": "5555555555554444"},
        {"amount": 2.0, "note": "ok", "PAN": None, "card_number": 378282246310005},
    ]
    envelopes = [make_envelope(f"t{i}", f, live, EVENT_MS + i) for i, f in enumerate(feats)]
    keys = chunk_keys(envelopes, np.arange(2, dtype=np.int64), 0, "w-1", 1)
    guard = Redactor.downstream(TapSettings())
    data = parquet_bytes(features_table(keys, envelopes, guard.redact))
    rows = pq.read_table(io.BytesIO(data)).to_pylist()
    assert [r["amount"] for r in rows] == [1.0, 2.0]
    assert rows[1]["note"] == "ok"  # the column stays when the first row's value is dropped
    for secret in (b"4111", b"5555555555554444", b"378282246310005"):
        assert secret not in data
    assert rows[0]["note"] is None and rows[0]["PAN"] is None


def _expected_rows(keys, envelopes, results) -> list[dict]:
    """PREDICTION_SCHEMA's definition, row by row in plain Python: the oracle for the
    column-wise builder."""
    common = {"kafka_partition": keys.partition, "worker_id": keys.worker_id}
    offsets, rows = keys.kafka_offset.to_pylist(), []
    for result in results:
        for i, e in enumerate(envelopes):
            score = None if result.scores is None else float(result.scores[i])
            error = result.error if result.scores is None else None
            if score is not None and not np.isfinite(score):
                score, error = None, "the model returned a non-finite score for this transaction"
            decision = None if score is None else ("alert" if score >= result.threshold else "pass")
            probe = result.request_latency_us if i == 0 else None
            rows.append(
                (
                    e,
                    offsets[i],
                    result.model_id,
                    "candidate",
                    score,
                    decision,
                    np.float32(result.latency_us),
                    probe,
                    error,
                )
            )
    for i, e in enumerate(envelopes):
        latency = np.float32(e.live.latency_ms * 1000.0)
        rows.append(
            (
                e,
                offsets[i],
                e.live.model_id,
                "live",
                e.live.score,
                e.live.decision,
                latency,
                latency,
                None,
            )
        )
    return [
        {
            "txn_id": e.txn_id,
            "event_time_ms": e.event_time,
            "model_id": model,
            "role": role,
            "score": score,
            "decision": decision,
            "latency_us": float(latency),
            "request_latency_us": None if probe is None else float(np.float32(probe)),
            "error": error,
            "kafka_offset": offset,
            **common,
        }
        for e, offset, model, role, score, decision, latency, probe, error in rows
    ]


def test_the_column_wise_rows_are_the_schema_s_definition_row_by_row() -> None:
    lives = [LiveScore("fraud@7", 0.25, "pass", 3.5), LiveScore("fraud@8", 0.9, None, 0.125)]
    envelopes = [
        make_envelope(f"t{i}", {"amount": float(i)}, lives[i % 3 == 2], EVENT_MS + i)
        for i in range(7)
    ]
    keys = chunk_keys(envelopes, list(range(40, 47)), 3, "w-9", 1_700_000_000_000_000)
    results = [
        ModelScores(
            "lr@1", 0.5, np.array([0.1, 0.5, np.nan, 0.7, np.inf, 0.0, 1.0]), 2.5, None, 9.0
        ),
        ModelScores("bad@1", 0.3, None, 0.0, "model bad@1: boom"),
        ModelScores("gbdt@2", 0.05, np.linspace(0, 1, 7), 7.25),
    ]
    table = prediction_table(keys, envelopes, results)
    assert table.schema == PREDICTION_SCHEMA
    rows = table.to_pylist()
    for row in rows:
        row["event_time_ms"] = int(row.pop("event_time").timestamp() * 1000)
        assert row.pop("scored_at").timestamp() == 1_700_000_000
    assert rows == _expected_rows(keys, envelopes, results)
