"""Pairing - the positional path gives exactly what the GROUP BY path gives, on every layout.

Each test writes a store, pairs the window both ways (analysis.positional, and analysis.grouped
by making the positional path step aside) and compares every column transaction by transaction.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analysis import paired as pw
from analysis import positional
from analysis.compare import Comparison
from shadow.dataset import connect, footer_models, open_dataset, register
from shadow.errors import UsageError
from shadow.kit.sample_store import (
    ModelScores,
    _prediction_batch,
    scenario,
    write_features,
    write_labels,
    write_predictions,
)
from shadow.objectstore import LocalStore
from shadow.predictions import (
    LABEL_SCHEMA,
    MODELS_KEY,
    PREDICTIONS,
    ROLE_LIVE,
    batch_key,
    labels_key,
    with_models,
)
from shadow.settings import AnalysisSettings

DAY0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
DAY = (DAY0, DAY0 + dt.timedelta(days=1))
SETTINGS = AnalysisSettings(min_segment_rows=50, bootstrap_samples=20, bootstrap_rows=500)


def _models(sc, n: int, seed: int = 2) -> list[ModelScores]:
    rng = np.random.default_rng(seed)
    latency = rng.gamma(2.0, 300.0, n).astype(np.float32)
    failing = sc.candidate(1.0)
    failing[rng.random(n) < 0.1] = np.nan
    return [
        ModelScores("cand@1", sc.candidate(0.7), latency_us=latency * 2),
        ModelScores("failing@1", failing, latency_us=latency),
        ModelScores("live@1", sc.live, role=ROLE_LIVE, latency_us=latency),
    ]


def _put(store: LocalStore, key: str, tables: list[pa.Table], models: bool = True) -> None:
    """One object holding several chunks, each model after model, as the worker writes."""
    table = pa.concat_tables(tables)
    sink = io.BytesIO()
    pq.write_table(with_models(table) if models else table, sink, compression="zstd")
    store.put(key, sink.getvalue())


def _write_chunks(
    store, sc, models, begin: int, end: int, chunk: int, topic: str = "t", *, footer: bool = True
) -> None:
    tables = [
        _prediction_batch(
            sc.ids[a : a + chunk],
            sc.event_time_ms[a : a + chunk],
            models,
            slice(a, a + chunk),
            (0, a),
        )
        for a in range(begin, end, chunk)
    ]
    key = batch_key(PREDICTIONS, topic, 0, begin, int(sc.event_time_ms[begin]))
    _put(store, key, tables, footer)


def _pair(store, window=DAY, candidates=None, segments=None, grouped=False, monkeypatch=None):
    if grouped:
        monkeypatch.setattr(positional, "pair", lambda *args, **kwargs: None)
    result = pw.build(connect(), store, window, candidates, segments)
    if grouped:
        monkeypatch.undo()
    result.arrays()  # runs the joins still pending
    return result


def _same(store, monkeypatch, **kwargs) -> pw.PairedWindow:
    """Pair both ways; every column equal per transaction. Returns the positional result."""
    fast = _pair(store, **kwargs)
    slow = _pair(store, grouped=True, monkeypatch=monkeypatch, **kwargs)
    assert slow.path == "grouped"
    assert (fast.candidates, fast.live_models) == (slow.candidates, slow.live_models)
    assert sorted(fast.columns) == sorted(slow.columns)
    a, b = np.argsort(fast.columns["keys"]), np.argsort(slow.columns["keys"])
    for name in fast.columns:
        np.testing.assert_array_equal(fast.columns[name][a], slow.columns[name][b], err_msg=name)
    return fast


def test_worker_layout_pairs_by_position_with_features_and_labels(tmp_path, monkeypatch):
    sc = scenario(3000, seed=3, hours=20)
    store = LocalStore(tmp_path)
    models = _models(sc, 3000)
    for begin in range(0, 3000, 1000):  # three objects of four chunks of 250 transactions
        _write_chunks(store, sc, models, begin, begin + 1000, 250)
    write_features(store, sc.ids, sc.event_time_ms, {"merchant_category": sc.merchant_category})
    write_labels(store, sc.ids[::2], sc.labels[::2], sc.amounts[::2])
    # later labels win, whether their file is read before or after the first labels
    _relabel(store, sc.ids[:400:2], 1 - sc.labels[:400:2], 1_000, "2025-12-30")
    _relabel(store, sc.ids[400:800:2], 1 - sc.labels[400:800:2], 2_000, "2026-01-02")
    _relabel(store, sc.ids[1:100:2], sc.labels[1:100:2], None, "2026-01-02")  # the only one
    window = (DAY0 + dt.timedelta(hours=3), DAY0 + dt.timedelta(hours=17))  # cuts chunks
    fast = _same(store, monkeypatch, window=window, segments=["merchant_category"])
    assert fast.path == "positional"
    inside = (sc.event_time_ms >= 1_767_225_600_000 + 3 * 3_600_000) & (
        sc.event_time_ms < 1_767_225_600_000 + 17 * 3_600_000
    )
    assert fast.transactions == inside.sum()
    assert fast.candidates == ["cand@1", "failing@1"] and fast.live_models == ["live@1"]
    labelled = inside[::2].sum() + inside[1:100:2].sum()
    assert np.isfinite(fast.columns["label"]).sum() == labelled
    relabelled = np.isin(fast.columns["keys"], _hashes(sc.ids[:800:2]))
    assert relabelled.sum() == inside[:800:2].sum()
    assert (fast.columns["amount"][relabelled] == 7.0).all()


def _hashes(ids) -> np.ndarray:
    con = connect()
    con.register("ids", pa.table({"txn_id": pa.array(ids, pa.string())}))
    return con.sql("SELECT hash(txn_id) AS h FROM ids").fetchnumpy()["h"]


def _relabel(store, ids, labels, label_ms: int | None, date: str) -> None:
    table = pa.table(
        {
            "txn_id": pa.array(ids, pa.string()),
            "label": pa.array(labels.astype(np.int8)),
            "amount": pa.array(np.full(len(ids), 7.0)),
            "label_time": pa.array([label_ms] * len(ids), pa.timestamp("ms", tz="UTC")),
        },
        schema=LABEL_SCHEMA,
    )
    _put_labels(store, labels_key(f"relabel-{label_ms}", date), table)


def _put_labels(store, key: str, table: pa.Table) -> None:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    store.put(key, sink.getvalue())


def test_replays_zombies_and_skipped_rows_merge_as_the_group_by_does(tmp_path, monkeypatch):
    sc = scenario(2000, seed=4, hours=10)
    store = LocalStore(tmp_path)
    models = _models(sc, 2000)
    skip = np.zeros(2000, bool)
    skip[3::7] = True
    models[0].skip = skip  # blocks of different lengths: no positional chunk
    write_predictions(store, sc.ids, sc.event_time_ms, models, batch_txns=500)
    replay = [m.head(500) for m in models]
    write_predictions(store, sc.ids[:500], sc.event_time_ms[:500], replay, topic="replayed")
    zombie = [
        ModelScores(m.model_id, m.scores[:300] + 0.01, m.role, m.threshold, m.latency_us[:300] + 5)
        for m in models
    ]
    write_predictions(store, sc.ids[:300], sc.event_time_ms[:300], zombie, topic="zombie")
    fast = _same(store, monkeypatch)
    assert fast.path == "positional" and fast.transactions == 2000
    assert fast.columns["seen_0"].sum() == 2000 - skip[300:].sum()  # the zombie saw all 300


def test_interleaved_rows_and_mixed_roles_take_the_group_by(tmp_path, monkeypatch):
    sc = scenario(400, seed=5, hours=2)
    store = LocalStore(tmp_path)
    models = _models(sc, 400)
    tables = [
        _prediction_batch(
            sc.ids[i : i + 1], sc.event_time_ms[i : i + 1], models, slice(i, i + 1), (0, i)
        )
        for i in range(400)
    ]
    _put(store, batch_key(PREDICTIONS, "t", 0, 0, int(sc.event_time_ms[0])), tables)
    assert _same(store, monkeypatch).path == "grouped"  # runs of one row: MIN_RUN
    other = LocalStore(tmp_path / "roles")
    write_predictions(other, sc.ids, sc.event_time_ms, models, batch_txns=200)
    relabelled = [ModelScores("cand@1", sc.live[:10], role=ROLE_LIVE)]
    write_predictions(other, sc.ids[:10], sc.event_time_ms[:10], relabelled, topic="odd")
    assert _pair(other).path == "grouped"  # cand@1 is live in one object


def test_models_are_those_with_rows_in_the_window_unless_named(tmp_path, monkeypatch):
    sc = scenario(1000, seed=6, hours=4)
    store = LocalStore(tmp_path)
    models = _models(sc, 1000)
    _write_chunks(store, sc, models, 0, 1000, 250)
    late = scenario(100, seed=7, start_ms=1_767_225_600_000 - 3_600_000, hours=0.5)
    gone = [
        ModelScores("retired@1", late.candidate(1.0)),
        ModelScores("old-live@1", late.live, role=ROLE_LIVE),
    ]
    write_predictions(store, late.ids, late.event_time_ms, gone, topic="yesterday")
    fast = _same(store, monkeypatch)  # the day before is read (slack), its models are not in
    assert fast.candidates == ["cand@1", "failing@1"] and fast.live_models == ["live@1"]
    named = _same(store, monkeypatch, candidates=["retired@1", "cand@1"])
    assert named.candidates == ["retired@1", "cand@1"]
    assert not named.columns["seen_0"].any() and named.columns["seen_1"].all()


def test_objects_read_for_the_window_without_rows_in_it_pair_nothing(tmp_path, monkeypatch):
    late = scenario(100, seed=13, start_ms=1_767_225_600_000 - 3_600_000, hours=0.5)
    store = LocalStore(tmp_path)
    write_predictions(store, late.ids, late.event_time_ms, _models(late, 100), batch_txns=50)
    found = _same(store, monkeypatch)  # the day before is read (slack): no row is in the day
    assert (found.transactions, found.candidates, found.live_models) == (0, [], [])
    named = _same(store, monkeypatch, candidates=["cand@1"])
    assert (named.transactions, named.candidates) == (0, ["cand@1"])
    with pytest.raises(UsageError, match="no predictions in the window"):
        Comparison(store, *DAY, settings=SETTINGS).run()


def test_objects_without_the_footer_list_are_scanned(tmp_path, monkeypatch):
    sc = scenario(600, seed=8, hours=3)
    store = LocalStore(tmp_path)
    models = _models(sc, 600)
    _write_chunks(store, sc, models, 0, 300, 100)
    _write_chunks(store, sc, models, 300, 600, 100, footer=False)
    assert footer_models(open_dataset(store, PREDICTIONS, *DAY)) is None
    fast = _same(store, monkeypatch)
    assert fast.path == "positional" and fast.transactions == 600


def test_a_footer_list_that_is_not_ours_means_a_scan(tmp_path: Path) -> None:
    sc = scenario(40, seed=14, hours=1)
    store = LocalStore(tmp_path)
    models = _models(sc, 40)
    table = _prediction_batch(sc.ids, sc.event_time_ms, models, slice(0, 40), (0, 0))
    odd = table.replace_schema_metadata({MODELS_KEY: b'{"not": "a list of pairs"}'})
    _put(store, batch_key(PREDICTIONS, "t", 0, 0, int(sc.event_time_ms[0])), [odd], False)
    assert footer_models(open_dataset(store, PREDICTIONS, *DAY)) is None
    assert _pair(store).transactions == 40


def test_footer_lists_each_objects_models(tmp_path: Path) -> None:
    sc = scenario(50, seed=9, hours=1)
    store = LocalStore(tmp_path)
    write_predictions(store, sc.ids, sc.event_time_ms, _models(sc, 50), batch_txns=50)
    (path,) = (tmp_path / PREDICTIONS).rglob("*.parquet")
    listed = pq.read_metadata(path).metadata[MODELS_KEY]
    assert b"failing@1" in listed and b'"live"' in listed


def test_a_hash_collision_falls_back_to_the_group_by(tmp_path, monkeypatch):
    sc = scenario(500, seed=10, hours=2)
    store = LocalStore(tmp_path)
    models = _models(sc, 500)
    write_predictions(store, sc.ids, sc.event_time_ms, models, batch_txns=250)
    again = [m.head(250) for m in models]
    write_predictions(store, sc.ids[:250], sc.event_time_ms[:250], again, topic="again")
    con = connect()
    register(con, "predictions", open_dataset(store, PREDICTIONS, *DAY))
    where = ("TRUE", {})
    hashes = con.sql("SELECT DISTINCT hash(txn_id) AS h FROM predictions").fetchnumpy()["h"]
    unique = np.asarray(hashes, dtype=np.uint64)
    assert not positional.collides(con, *where, unique)
    monkeypatch.setattr(positional, "collides", lambda *args: True)
    assert _pair(store).path == "grouped"


def test_a_window_too_large_for_memory_takes_the_group_by(tmp_path, monkeypatch):
    sc = scenario(300, seed=12, hours=1)
    store = LocalStore(tmp_path)
    write_predictions(store, sc.ids, sc.event_time_ms, _models(sc, 300), batch_txns=100)
    assert _pair(store).path == "positional"
    rows = 300 * 3  # a quarter of this memory holds the peak of 899 rows, not 900
    monkeypatch.setattr(
        positional, "memory_bytes", lambda: (rows - 1) * 4 * positional.PEAK_BYTES_PER_ROW
    )
    assert _pair(store).path == "grouped"
    monkeypatch.setattr(
        positional, "memory_bytes", lambda: rows * 4 * positional.PEAK_BYTES_PER_ROW
    )
    assert _pair(store).path == "positional"


@pytest.mark.parametrize("labels", [False, True])
def test_comparisons_agree_on_both_paths(tmp_path, monkeypatch, labels):
    sc = scenario(4000, seed=11, hours=8)
    store = LocalStore(tmp_path)
    write_predictions(store, sc.ids, sc.event_time_ms, _models(sc, 4000), batch_txns=800)
    write_features(store, sc.ids, sc.event_time_ms, {"merchant_category": sc.merchant_category})
    if labels:
        write_labels(store, sc.ids, sc.labels, sc.amounts)
    fast = Comparison(store, *DAY, settings=SETTINGS).run()
    monkeypatch.setattr(positional, "pair", lambda *args, **kwargs: None)
    slow = Comparison(store, *DAY, settings=SETTINGS).run()
    assert _close(fast, slow)


def _close(a, b) -> bool:
    """Nested evidence equal up to float rounding (sums taken in another order)."""
    if isinstance(a, dict):
        assert sorted(a) == sorted(b)
        return all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        assert len(a) == len(b)
        return all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-12, nan_ok=True)
        return True
    assert a == b
    return True
