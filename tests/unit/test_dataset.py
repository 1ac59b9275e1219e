"""The dataset reader: window, date pruning, dedupe on (txn_id, model_id), labels, features."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from shadow.dataset import read_features, read_labels, read_predictions
from shadow.kit.sample_store import ModelScores, txn_ids, write_features, write_labels
from shadow.kit.sample_store import write_predictions as write
from shadow.objectstore import LocalStore
from shadow.predictions import LABEL_SCHEMA, PREDICTION_SCHEMA, ROLE_LIVE, labels_key

DAY0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
MS0 = int(DAY0.timestamp() * 1000)
HOUR = 3_600_000


def _models(n: int) -> list[ModelScores]:
    rng = np.random.default_rng(3)
    return [
        ModelScores("live@1", rng.random(n), role=ROLE_LIVE),
        ModelScores("cand@1", rng.random(n)),
    ]


def test_reads_the_window_and_dedupes_replays_and_zombie_copies(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    ids, times = txn_ids(600), MS0 + np.arange(600, dtype=np.int64) * 60_000  # one a minute
    models = _models(600)
    write(store, ids, times, models, batch_txns=100)
    # a zombie writer after a rebalance: the same rows again under other keys
    write(store, ids, times, models, batch_txns=150, topic="zombie.copy")
    table = read_predictions(store, DAY0, DAY0 + dt.timedelta(hours=5))
    assert table.num_rows == 300 * 2  # 5 h of one-a-minute transactions, two models each
    assert table.schema == PREDICTION_SCHEMA
    pairs = set(zip(table["txn_id"].to_pylist(), table["model_id"].to_pylist(), strict=True))
    assert len(pairs) == table.num_rows
    assert min(table["event_time"].to_pylist()) == DAY0


def test_models_filter_and_the_batch_started_the_day_before(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    # one batch starting 23:30 on Dec 31 holds transactions until 00:29 on Jan 1
    start = MS0 - 30 * 60_000
    ids, times = txn_ids(60), start + np.arange(60, dtype=np.int64) * 60_000
    write(store, ids, times, _models(60), batch_txns=60)
    assert store.list("predictions")[0].startswith("predictions/date=2025-12-31/")
    table = read_predictions(store, DAY0, DAY0 + dt.timedelta(days=1), models=["cand@1"])
    assert table.num_rows == 30
    assert set(table["model_id"].to_pylist()) == {"cand@1"}


def test_empty_or_missing_datasets_give_empty_tables(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "nothing-here")
    assert read_predictions(store, DAY0, DAY0 + dt.timedelta(days=1)).num_rows == 0
    assert read_labels(store).schema == LABEL_SCHEMA
    assert read_features(store, None, None, ["merchant_category"]).num_rows == 0


def test_labels_keep_the_latest_label_of_a_transaction(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    write_labels(store, txn_ids(4), np.array([0, 0, 1, 0]), np.array([1.0, 2, 3, 4]))
    late = pa.table(
        {
            "txn_id": ["t1"],
            "label": pa.array([1], pa.int8()),
            "amount": [2.0],
            "label_time": pa.array([MS0 + 10 * HOUR], pa.timestamp("ms", tz="UTC")),
        },
        schema=LABEL_SCHEMA,
    )
    buffer = io.BytesIO()
    pq.write_table(late, buffer)
    store.put(labels_key("chargebacks", "2026-01-02"), buffer.getvalue())
    labels = read_labels(store).to_pydict()
    by_id = dict(zip(labels["txn_id"], labels["label"], strict=True))
    assert by_id == {"t0": 0, "t1": 1, "t2": 1, "t3": 0}


def test_features_columns_in_the_window(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    ids, times = txn_ids(100), MS0 + np.arange(100, dtype=np.int64) * HOUR // 10
    categories = np.array(["grocery", "travel"] * 50, dtype=object)
    write_features(store, ids, times, {"merchant_category": categories, "amount": np.ones(100)})
    table = read_features(store, DAY0, DAY0 + dt.timedelta(hours=2), ["merchant_category"])
    assert table.column_names == ["txn_id", "event_time", "merchant_category"]
    assert table.num_rows == 20
    assert sorted(set(table["merchant_category"].to_pylist())) == ["grocery", "travel"]


def test_files_written_before_request_latency_existed_still_read(tmp_path: Path) -> None:
    """Objects from before the contract gained request_latency_us read it as null, alone or
    mixed with newer objects, in the reader and in the comparison."""
    from analysis.compare import Comparison

    store = LocalStore(tmp_path)
    ids, times = txn_ids(400), MS0 + np.arange(400, dtype=np.int64) * 1000
    latency = np.full(400, 250.0, np.float32)
    models = [
        ModelScores(
            "live@1", np.random.default_rng(1).random(400), role=ROLE_LIVE, latency_us=latency
        ),
        ModelScores("cand@1", np.random.default_rng(2).random(400), latency_us=latency),
    ]
    write(store, ids, times, models, batch_txns=100)
    objects = sorted(tmp_path.glob("predictions/*/*.parquet"))
    for path in objects[:3]:  # the first three batches as an older worker wrote them
        pq.write_table(pq.read_table(path).drop_columns(["request_latency_us"]), path)
    table = read_predictions(store, DAY0, None)
    assert table.schema == PREDICTION_SCHEMA and table.num_rows == 800
    assert table["request_latency_us"].null_count == 800 - 100 - 1  # live 100 + 1 probe
    body = Comparison(store, DAY0, None).run()
    assert body["candidates"]["cand@1"]["request_latency_ms"]["count"] == 1
    for path in objects[3:]:
        pq.write_table(pq.read_table(path).drop_columns(["request_latency_us"]), path)
    assert read_predictions(store, DAY0, None)["request_latency_us"].null_count == 800
    assert Comparison(store, DAY0, None).run()["candidates"]["cand@1"]["request_latency_ms"] is None
