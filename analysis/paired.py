"""Paired table - one DuckDB row per sampled transaction with the live and every candidate score.

Dedupe and pairing happen in one GROUP BY txn_id: duplicates of (txn_id, model_id) (a replayed
batch, a zombie writer) collapse into the same group and the same FILTER aggregate, so nothing
is counted twice. Feature (segment) and label rows are deduped in aggregates of their own and
joined to the pairs. Where it is cheaper, strings become integers first: the model as a small
key, segment values as codes. Only compact numeric columns leave DuckDB.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from shadow.dataset import open_dataset, register, window_sql
from shadow.predictions import FEATURES, LABELS, PREDICTIONS, ROLE_LIVE

if TYPE_CHECKING:
    import duckdb

    from shadow.objectstore import ObjectStore


def quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def ident(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


@dataclass
class PairedWindow:
    """The paired table `paired` in a DuckDB connection, for one window and candidate list."""

    con: duckdb.DuckDBPyConnection
    candidates: list[str]
    live_models: list[str]
    transactions: int
    has_labels: bool = False
    segments: list[str] = field(default_factory=list)
    segment_names: dict[str, list[str]] = field(default_factory=dict)
    """Per segment feature, its values in the window: seg_<i> holds 1 + the value's index."""

    def arrays(self) -> dict[str, Any]:
        """Every per-row column the metrics need, fetched in ONE query so they stay aligned:
        scores s_*, latencies l_*, label/amount, a 64-bit hash of txn_id (`keys`, an
        order-free identity for sampling) and segment codes seg_<i> (0 = no value). DuckDB
        writes NaN for NULL, so numpy gets plain arrays (no masked-array copies)."""
        n = len(self.candidates)
        names = ["s_live", "l_live"] + [f"{p}_{i}" for i in range(n) for p in ("s", "l")]
        select = [f"coalesce({c}, 'NaN'::{_float_type(c)}) AS {c}" for c in names]
        if self.has_labels:
            select += ["coalesce(label, 'NaN'::DOUBLE) AS label"]
            select += ["coalesce(amount, 'NaN'::DOUBLE) AS amount", "hash(txn_id) AS keys"]
        values = {f"seg_{i}": self.segment_names[f] for i, f in enumerate(self.segments)}
        for column, names_of in values.items():
            kind = _INTEGER[compact(len(names_of))]
            select.append(f"coalesce({column}, 0)::{kind} AS {column}")
        raw = self.con.sql(f"SELECT {', '.join(select)} FROM paired").fetchnumpy()
        out: dict[str, Any] = {column: np.asarray(array) for column, array in raw.items()}
        for column, names_of in values.items():
            out[column] = (out[column], names_of)
        return out


def _float_type(column: str) -> str:
    """Latencies stay FLOAT (float32) as stored: they sort twice as fast."""
    return "FLOAT" if column.startswith("l_") else "DOUBLE"


def compact(segments: int) -> type:
    """The smallest integer type for codes 0..segments: numpy sorts 8/16-bit integers stably
    with a radix sort (several times faster than a 32-bit merge sort)."""
    if segments < 2**7:
        return np.int8
    return np.int16 if segments < 2**15 else np.int32


_INTEGER = {np.int8: "TINYINT", np.int16: "SMALLINT", np.int32: "INTEGER"}


def models_in_window(
    con: duckdb.DuckDBPyConnection, where: str, params: dict
) -> list[tuple[str, str]]:
    """Every (model_id, role) with rows in the window."""
    sql = f"SELECT DISTINCT model_id, role FROM predictions WHERE {where}"
    return [(str(m), str(r)) for m, r in con.sql(sql, params=params).fetchall()]


def build(
    con: duckdb.DuckDBPyConnection,
    store: ObjectStore,
    window: tuple[dt.datetime | None, dt.datetime | None],
    candidates: list[str] | None,
    segment_features: list[str] | None = None,
) -> PairedWindow:
    """Register the window's datasets and create the paired table (labels, segments joined)."""
    start, end = window
    if not register(con, "predictions", open_dataset(store, PREDICTIONS, start, end)):
        return PairedWindow(con, list(candidates or []), [], 0)
    where, params = window_sql(start, end)
    roles = models_in_window(con, where, params)
    found = dict(roles)
    live_models = sorted(m for m, role in found.items() if role == ROLE_LIVE)
    if candidates is None:
        candidates = sorted(m for m, role in found.items() if role != ROLE_LIVE)
    segments = _segment_columns(con, store, window, segment_features or [])
    segments = {f: _segment_values(con, f, where, params) for f in segments}
    has_labels = register(con, "labels", open_dataset(store, LABELS))
    select, joins = "p.*", ""
    if segments:
        select += "".join(f", f.seg_{i}" for i in range(len(segments)))
        joins += f" LEFT JOIN ({_features_sql(segments, where)}) f USING (txn_id)"
    if has_labels:
        select += ", l.label, l.amount"
        joins += f" LEFT JOIN ({_LABELS_SQL}) l USING (txn_id)"
    live = live_models if len(roles) == len(found) else None  # one role per model
    pairs = _pairs_sql(candidates, where, live)
    sql = f"CREATE OR REPLACE TEMP TABLE paired AS WITH p AS ({pairs}) "
    # row order is irrelevant while building (~25 % faster); every per-row read afterwards is
    # one query (PairedWindow.arrays), so the columns stay aligned with each other
    con.execute("SET preserve_insertion_order = false")
    con.execute(_inline(sql + f"SELECT {select} FROM p{joins}", params))
    con.execute("SET preserve_insertion_order = true")
    count = con.sql("SELECT count(*) FROM paired WHERE s_live IS NOT NULL").fetchall()[0]
    return PairedWindow(
        con, candidates, live_models, int(count[0]), has_labels, list(segments), segments
    )


def _pairs_sql(candidates: list[str], where: str, live: list[str] | None = None) -> str:
    """Dedupe and pairing in ONE hash aggregate on txn_id. Each row gets a small integer model
    key first, so the FILTER aggregates compare integers, not strings."""
    rows = (
        f"SELECT txn_id, event_time, ({_model_key(candidates, live)})::TINYINT AS k, score, "
        f"coalesce(score, {_NONE}) AS marked, latency_us FROM predictions WHERE {where}"
    )
    grouped = f"SELECT txn_id, {_pivot(candidates)} FROM ({rows}) GROUP BY txn_id"
    if not candidates:
        return grouped
    return f"SELECT * REPLACE ({_unmark(candidates)}), {_seen(candidates)} FROM ({grouped})"


def _model_key(candidates: list[str], live: list[str] | None) -> str:
    """0 for a live row, i + 1 for candidate i's rows, NULL for other models. `live`: the
    live model ids when each model has one role in the window, so the rows are told apart
    by model_id alone and the scan skips the role column; None: by the role column."""
    if live is None:
        whens = [f"WHEN role = {quote(ROLE_LIVE)} THEN 0"]
    else:
        whens = [f"WHEN model_id IN ({', '.join(quote(m) for m in live)}) THEN 0"] if live else []
    whens += [f"WHEN model_id = {quote(m)} THEN {i + 1}" for i, m in enumerate(candidates)]
    return f"CASE {' '.join(whens)} END" if whens else "NULL"


def _features_sql(segments: dict[str, list[str]], where: str) -> str:
    """One row per txn_id of the window's features, each segment value as its integer code:
    a hash join on integers after the pairing costs less than feeding strings through it."""
    codes = [_code(ident(f), names) for f, names in segments.items()]
    picks = ", ".join(f"any_value({code}) AS seg_{i}" for i, code in enumerate(codes))
    return f"SELECT txn_id, {picks} FROM features WHERE {where} GROUP BY txn_id"


def _code(column: str, names: list[str]) -> str:
    """The 1-based position of the column's value in `names` (0: no value)."""
    values = ", ".join(quote(v) for v in names)
    return f"coalesce(list_position([{values}], {column}::VARCHAR), 0)::INTEGER"


# the latest label of a transaction wins; a label without label_time counts as the oldest.
# Features and labels are deduped in aggregates of their own and joined one after the other:
# ~15 % less work than one aggregate over their union.
_LABEL_TIME = "coalesce(label_time, TIMESTAMPTZ '1970-01-01 00:00:00+00')"
_LABELS_SQL = (
    f"SELECT txn_id, arg_max(label::DOUBLE, {_LABEL_TIME}) AS label, "
    f"arg_max(amount, {_LABEL_TIME}) AS amount FROM labels GROUP BY txn_id"
)


def _pivot(candidates: list[str]) -> str:
    """One FILTER aggregate per model and column on the integer key k: dedupe and pairing in
    one GROUP BY. A row without a score counts as -inf (`marked`, computed once per row for
    every candidate), so max() is NULL only for a model that did not see the transaction and
    -inf only when none of its rows has a score."""
    aggregates = [
        "min(event_time) AS event_time",
        "max(score) FILTER (WHERE k = 0) AS s_live",
        "any_value(latency_us) FILTER (WHERE k = 0) AS l_live",
    ]
    for i in range(len(candidates)):
        aggregates += [
            f"max(marked) FILTER (WHERE k = {i + 1}) AS s_{i}",
            f"any_value(latency_us) FILTER (WHERE k = {i + 1}) AS l_{i}",
        ]
    return ",\n  ".join(aggregates)


_NONE = "'-inf'::DOUBLE"


def _unmark(candidates: list[str]) -> str:
    return ", ".join(f"nullif(s_{i}, {_NONE}) AS s_{i}" for i in range(len(candidates)))


def _seen(candidates: list[str]) -> str:
    return ", ".join(f"s_{i} IS NOT NULL AS seen_{i}" for i in range(len(candidates)))


def _segment_columns(con, store: ObjectStore, window: tuple, features: list[str]) -> list[str]:
    """The wanted feature columns the features dataset has (registered as `features`)."""
    if not features:
        return []
    dataset = open_dataset(store, FEATURES, *window)
    found = [f for f in features if dataset is not None and f in dataset.schema.names]
    if found:
        register(con, "features", dataset)
    return found


def _segment_values(con, feature: str, where: str, params: dict) -> list[str]:
    """The distinct values of a feature column in the window, sorted (their codes' order)."""
    column = f"{ident(feature)}::VARCHAR"
    sql = f"SELECT DISTINCT {column} FROM features WHERE {where} AND {column} IS NOT NULL"
    return sorted(str(row[0]) for row in con.sql(sql, params=params).fetchall())


def _inline(sql: str, params: dict[str, Any]) -> str:
    """CREATE TABLE AS cannot be prepared in DuckDB: inline the window's timestamps."""
    for name, value in params.items():
        sql = sql.replace(f"${name}", f"TIMESTAMPTZ {quote(value.isoformat())}")
    return sql
