"""One dedupe rule on every path: a valid score beats a missing or NaN copy, then the latest
write wins. The same rows written in the worker's layout (positional pairing) and interleaved
(GROUP BY pairing) give identical evidence, and both equal an independent pandas dedupe."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from analysis import paired as pw
from analysis.compare import Comparison
from shadow.dataset import connect, read_predictions
from shadow.kit.sample_store import ModelScores, scenario, write_labels, write_predictions
from shadow.objectstore import LocalStore
from shadow.prediction_store import parquet_bytes
from shadow.predictions import PREDICTIONS, ROLE_LIVE, batch_key
from shadow.settings import AnalysisSettings

N = 3000
DAY0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
WINDOW = (DAY0, DAY0 + dt.timedelta(days=1))
SETTINGS = AnalysisSettings(min_segment_rows=100, bootstrap_samples=40, bootstrap_rows=1500)


def _write_copies(store: LocalStore, sc) -> None:
    """An original batch whose first 300 transactions scored NaN on a@1, a later replay of
    the first 1000 that scored them (and failed b@1 on its first 100), and a zombie copy of
    1200..1500 with other valid scores, written between the two."""
    a, b = sc.candidate(0.6), sc.candidate(0.9)
    first = a.copy()
    first[:300] = np.nan
    live = ModelScores("live@1", sc.live, role=ROLE_LIVE)
    write_predictions(store, sc.ids, sc.event_time_ms, [ModelScores("a@1", first, nan_scores=True),
                      ModelScores("b@1", b), live], batch_txns=500, written_ms=10)  # fmt: skip
    failed_b = b[:1000].copy()
    failed_b[:100] = np.nan
    replay = [ModelScores("a@1", a[:1000]), ModelScores("b@1", failed_b), live.head(1000)]
    write_predictions(store, sc.ids[:1000], sc.event_time_ms[:1000], replay, topic="replay",
                      batch_txns=500, written_ms=5000)  # fmt: skip
    part = slice(1200, 1500)
    zombie = [
        ModelScores("a@1", a[part] + 0.05),
        ModelScores("b@1", b[part] - 0.05),
        ModelScores("live@1", sc.live[part], role=ROLE_LIVE),
    ]
    write_predictions(store, sc.ids[part], sc.event_time_ms[part], zombie, topic="zombie",
                      batch_txns=500, written_ms=2000)  # fmt: skip


def _table(store: LocalStore) -> pa.Table:
    files = sorted((Path(store.root) / PREDICTIONS).rglob("*.parquet"))
    tables = [pq.read_table(f, partitioning=None) for f in files]
    return pa.concat_tables(tables, promote_options="permissive")


def _rows(store: LocalStore) -> pd.DataFrame:
    return _table(store).to_pandas()


def _interleave(source: LocalStore, target: LocalStore) -> None:
    """Every row of `source` (NaN scores kept) in one object, ordered by txn_id then model:
    runs of one row, so the analysis must pair by GROUP BY."""
    table = _table(source)
    model = table.column("model_id").cast(pa.string())
    table = table.take(
        pc.sort_indices(
            pa.table({"t": table.column("txn_id"), "m": model}),
            [("t", "ascending"), ("m", "ascending")],
        )
    )
    first_ms = int(table.column("event_time").cast(pa.int64()).to_numpy().min())
    target.put(batch_key(PREDICTIONS, "mixed", 0, 0, first_ms), parquet_bytes(table))


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory):
    sc = scenario(N, seed=21, hours=3)
    worker = LocalStore(tmp_path_factory.mktemp("worker"))
    _write_copies(worker, sc)
    mixed = LocalStore(tmp_path_factory.mktemp("mixed"))
    _interleave(worker, mixed)
    for store in (worker, mixed):
        write_labels(store, sc.ids, sc.labels, sc.amounts)
    return sc, worker, mixed


def _expected(rows: pd.DataFrame) -> pd.DataFrame:
    """The rule, independently: per (txn_id, model_id) the valid copy with the latest
    scored_at (then partition, offset, score); score NaN when no copy is valid."""
    rows = rows.assign(valid=np.isfinite(rows["score"].astype(float)))
    keys = ["valid", "scored_at", "kafka_partition", "kafka_offset", "score"]
    chosen = rows.sort_values(keys, na_position="first").groupby(["txn_id", "model_id"]).last()
    return chosen.reset_index().pivot(index="txn_id", columns="model_id", values="score")


def test_both_layouts_take_the_paths_they_are_meant_to(stores) -> None:
    _, worker, mixed = stores
    assert pw.build(connect(), worker, WINDOW, None).path == "positional"
    assert pw.build(connect(), mixed, WINDOW, None).path == "grouped"


def test_both_paths_give_identical_evidence(stores) -> None:
    _, worker, mixed = stores
    fast = Comparison(worker, *WINDOW, settings=SETTINGS).run()
    slow = Comparison(mixed, *WINDOW, settings=SETTINGS).run()
    _assert_same(fast, slow, "evidence")


def _assert_same(a, b, where: str) -> None:
    if isinstance(a, dict):
        assert sorted(a) == sorted(b), where
        for key in a:
            _assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, abs=1e-12), where
    else:
        assert a == b, where


def test_the_copy_that_counts_is_the_valid_latest_one(stores) -> None:
    sc, worker, _ = stores
    want = _expected(_rows(worker)).loc[list(sc.ids)]
    body = Comparison(worker, *WINDOW, settings=SETTINGS).run()
    for name in ("a@1", "b@1"):
        entry = body["candidates"][name]
        scores = want[name].to_numpy(float)
        scored = np.isfinite(scores)
        assert entry["errors"] == np.sum(~scored) == 0  # the replay repaired every NaN
        assert entry["coverage"] == 1.0
        quantiles = entry["distribution"]["candidate_quantiles"]
        assert quantiles["mean"] == pytest.approx(scores.mean(), rel=1e-12)
        assert entry["distribution"]["ks_statistic"] == pytest.approx(
            stats.ks_2samp(want["live@1"], scores).statistic, abs=1e-12
        )
        labelled = entry["labelled"]["metrics"]["roc_auc"]
        assert labelled["candidate"] == pytest.approx(roc_auc_score(sc.labels, scores))
    # the zombie copy (lower b@1 scores) was written after the original: it counts, not the
    # highest score
    rows = _rows(worker).query("model_id == 'b@1'").groupby("txn_id")["score"].max()
    zombie = list(sc.ids[1200:1500])
    assert (want.loc[zombie, "b@1"] < rows.loc[zombie] - 0.04).all()


def test_the_notebook_reader_keeps_the_same_copy(stores) -> None:
    _, worker, _ = stores
    want = _expected(_rows(worker))
    read = read_predictions(worker, *WINDOW).to_pandas()
    got = read.pivot(index="txn_id", columns="model_id", values="score").loc[want.index]
    for name in ("a@1", "b@1", "live@1"):
        np.testing.assert_allclose(got[name], want[name], rtol=0, atol=0)
