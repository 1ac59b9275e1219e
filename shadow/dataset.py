"""Dataset reader - predictions, features and labels of a time window, deduped, via DuckDB.

pyarrow.dataset lists the Hive-style `date=` partitions on the store's pyarrow filesystem (a local
folder or any S3 endpoint, offline: no DuckDB extension is downloaded) and prunes them to the
window; DuckDB then dedupes on (txn_id, model_id) and does the joins.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from shadow.predictions import FEATURES, LABEL_SCHEMA, LABELS, PREDICTION_SCHEMA, PREDICTIONS

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
    import pyarrow.dataset as ds

    from shadow.objectstore import ObjectStore

logger = logging.getLogger(__name__)

# a batch's date= is its FIRST record's date, so a batch started before midnight may hold
# records of the next day: prune with one day of slack before the window
_SLACK = dt.timedelta(days=1)


def utc(moment: dt.datetime) -> dt.datetime:
    """The moment as an aware UTC datetime (naive means UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def open_dataset(
    store: ObjectStore,
    name: str,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    skip: frozenset[str] = frozenset(),
) -> ds.Dataset | None:
    """The Parquet objects under `name/`, pruned to the date partitions of [start, end);
    `skip`: keys of objects to leave out (corrupt ones, see analysis.inputs)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    fs, root = store.arrow()
    base = f"{root}/{name}"
    partitioning = ds.partitioning(pa.schema([("date", pa.string())]), flavor="hive")
    try:
        whole = ds.dataset(base, filesystem=fs, format="parquet", partitioning=partitioning)
    except (FileNotFoundError, OSError) as exc:
        if _missing(exc):
            return None
        raise _store_error(store, name, exc) from None
    paths = [f.path for f in whole.get_fragments(filter=_date_filter(start, end))]
    paths = [p for p in paths if not p.rsplit("/", 1)[-1].startswith(".")]
    if skip:
        paths = [p for p in paths if p.removeprefix(root).lstrip("/") not in skip]
    if not paths:
        return None
    return ds.dataset(
        paths,
        filesystem=fs,
        format="parquet",
        partitioning=partitioning,
        partition_base_dir=base,
    )


def _date_filter(start: dt.datetime | None, end: dt.datetime | None) -> Any:
    import pyarrow.dataset as ds

    expr = None
    if start is not None:
        expr = ds.field("date") >= (utc(start) - _SLACK).strftime("%Y-%m-%d")
    if end is not None:
        upper = ds.field("date") <= utc(end).strftime("%Y-%m-%d")
        expr = upper if expr is None else expr & upper
    return expr


def _missing(exc: OSError) -> bool:
    return isinstance(exc, FileNotFoundError) or "does not exist" in str(exc).lower()


def _store_error(store: ObjectStore, name: str, exc: Exception) -> Exception:
    from shadow.errors import StoreError

    return StoreError(store.uri, f"cannot list {name}/: {type(exc).__name__}: {exc}")


def register(con: duckdb.DuckDBPyConnection, view: str, dataset: ds.Dataset | None) -> bool:
    """Make `view` a DuckDB view of the dataset; False when there is no data."""
    import pyarrow.fs

    if dataset is None:
        return False
    if isinstance(dataset.filesystem, pyarrow.fs.LocalFileSystem):
        # DuckDB's own Parquet reader is ~1.5x faster than scanning the arrow dataset locally
        files = ", ".join(quote(path) for path in dataset.files)
        con.execute(
            f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM read_parquet([{files}], "
            "hive_partitioning = true, hive_types = {'date': VARCHAR}, union_by_name = true)"
        )
    else:
        con.register(f"{view}_arrow", dataset)
        con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM {view}_arrow")
    return True


FOOTER_READERS = 8
"""Objects whose footers are read at once (a remote store answers each read in a round trip)."""


def footer_models(dataset: ds.Dataset | None) -> list[tuple[str, str]] | None:
    """The (model_id, role) pairs that the footers of the dataset's objects list (MODELS_KEY):
    a few kilobytes per object instead of a scan. None when any object lacks them (written
    before they existed, or by another writer): then scan."""
    from concurrent.futures import ThreadPoolExecutor

    from shadow.predictions import MODELS_KEY, models_of

    if dataset is None:
        return None

    def listed(fragment: Any) -> list[tuple[str, str]] | None:
        return models_of((fragment.metadata.metadata or {}).get(MODELS_KEY))

    with ThreadPoolExecutor(max_workers=FOOTER_READERS) as pool:
        found = list(pool.map(listed, dataset.get_fragments()))
    if any(models is None for models in found):
        return None
    return sorted({pair for models in found for pair in models or []})


def quote(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def connect(threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection for one analysis."""
    import duckdb

    con = duckdb.connect(":memory:")
    # an analysis reads the same objects in several queries: parse each footer once
    con.execute("SET parquet_metadata_cache = true")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


COPY_ORDER = (
    "isfinite(coalesce(score, 'NaN'::DOUBLE)) DESC, scored_at DESC NULLS LAST, "
    "kafka_partition DESC NULLS LAST, kafka_offset DESC NULLS LAST, score DESC NULLS LAST, "
    "latency_us DESC NULLS LAST"
)
"""Which copy of a (txn_id, model_id) counts when a model scored a transaction more than once
(a replayed batch, a zombie writer): a valid score (a finite number) wins over a missing or NaN
one; among valid copies the latest write (scored_at) wins, then the later Kafka record, then
the higher score and latency (copies equal in all of these are the same scoring). Every reader
and both pairing paths of the analysis use this order."""


def window_sql(start: dt.datetime | None, end: dt.datetime | None) -> tuple[str, dict[str, Any]]:
    """A WHERE clause (and its parameters) that keeps event_time in [start, end)."""
    clauses, params = ["TRUE"], {}
    if start is not None:
        clauses.append("event_time >= $start")
        params["start"] = utc(start)
    if end is not None:
        clauses.append("event_time < $end")
        params["end"] = utc(end)
    return " AND ".join(clauses), params


def read_predictions(
    store: ObjectStore,
    start: dt.datetime | None,
    end: dt.datetime | None,
    models: list[str] | None = None,
) -> pa.Table:
    """Prediction rows with event_time in [start, end), one per (txn_id, model_id)."""
    con = connect()
    if not register(con, "predictions", open_dataset(store, PREDICTIONS, start, end)):
        return PREDICTION_SCHEMA.empty_table()
    where, params = window_sql(start, end)
    if models is not None:
        where += " AND model_id IN (SELECT unnest($models))"
        params["models"] = list(models)
    # a column the contract gained later (request_latency_us) reads as null in older files
    present = set(con.sql("SELECT * FROM predictions LIMIT 0").columns)
    columns = ", ".join(n if n in present else f"NULL AS {n}" for n in PREDICTION_SCHEMA.names)
    sql = (
        f"SELECT DISTINCT ON (txn_id, model_id) {columns} FROM predictions WHERE {where} "
        f"ORDER BY txn_id, model_id, {COPY_ORDER}"
    )
    return _conform(con.sql(sql, params=params).to_arrow_table(), PREDICTION_SCHEMA)


def read_labels(store: ObjectStore) -> pa.Table:
    """All labels, one per txn_id (the latest label_time wins)."""
    con = connect()
    if not register(con, "labels", open_dataset(store, LABELS)):
        return LABEL_SCHEMA.empty_table()
    columns = ", ".join(LABEL_SCHEMA.names)
    sql = (
        f"SELECT DISTINCT ON (txn_id) {columns} FROM labels "
        "ORDER BY txn_id, label_time DESC NULLS LAST"
    )
    return _conform(con.sql(sql).to_arrow_table(), LABEL_SCHEMA)


def read_features(
    store: ObjectStore,
    start: dt.datetime | None,
    end: dt.datetime | None,
    columns: list[str] | None = None,
) -> pa.Table:
    """Feature rows with event_time in [start, end), one per txn_id; `columns` keeps a subset."""
    import pyarrow as pa

    con = connect()
    if not register(con, "features", open_dataset(store, FEATURES, start, end)):
        return pa.table({"txn_id": pa.array([], pa.string())})
    where, params = window_sql(start, end)
    wanted = "txn_id, event_time" + "".join(f', "{c}"' for c in columns or [])
    select = wanted if columns is not None else "* EXCLUDE (date)"
    sql = f"SELECT DISTINCT ON (txn_id) {select} FROM features WHERE {where} ORDER BY txn_id"
    return con.sql(sql, params=params).to_arrow_table()


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """DuckDB returns plain strings for dictionary columns: cast back to the contract schema."""
    return table.select(schema.names).cast(schema)
