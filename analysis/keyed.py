"""Keyed joins - segment codes and labels onto positionally paired transactions.

The positional path (analysis.positional) identifies a transaction by the 64-bit hash of its
txn_id (`keys`), and features and labels join on that hash. Features are deduped on txn_id
itself, as in the GROUP BY path; features written alongside the predictions, in the same
order, need no join at all. Labels are joined first and deduped after, only where a
transaction has several.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from analysis.grouped import LABEL_TIME, codes_sql, compact, features_sql
from analysis.sql import numpy_columns

if TYPE_CHECKING:
    import duckdb


def segment_rows(
    con: duckdb.DuckDBPyConnection, where: str, params: dict, segments: dict[str, list[str]]
) -> dict[str, np.ndarray]:
    """The window's features rows in scan order: h (the txn_id hash) and seg_<k> codes."""
    sql = f"SELECT hash(txn_id) AS h, {codes_sql(segments)} FROM features WHERE {where}"
    return numpy_columns(con.sql(sql, params=params))


def segment_codes(
    con: duckdb.DuckDBPyConnection,
    where: str,
    params: dict,
    segments: dict[str, list[str]],
    keys: np.ndarray,
    rows: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """seg_<k>: per transaction, the 1-based code of its value of segment feature k (0: none).
    `rows`: segment_rows, if already read."""
    kinds = [compact(len(names)) for names in segments.values()]
    rows = segment_rows(con, where, params, segments) if rows is None else rows
    if len(rows["h"]) == len(keys) and np.array_equal(rows["h"], keys):
        return {f"seg_{i}": rows[f"seg_{i}"].astype(kind) for i, kind in enumerate(kinds)}
    joined = _join(con, keys, features_sql(segments, where, "hash(txn_id) AS h"), params)
    return {
        f"seg_{i}": _scatter(len(keys), joined["pos"], joined[f"seg_{i}"], kind(0))
        for i, kind in enumerate(kinds)
    }


def labels(con: duckdb.DuckDBPyConnection, keys: np.ndarray) -> dict[str, np.ndarray]:
    """label and amount per transaction (NaN: not labelled yet). A transaction labelled more
    than once takes its latest label (a label without label_time counts as the oldest), as
    in the GROUP BY path; the join comes first, so the usual single labels need no GROUP BY."""
    sql = (
        "SELECT hash(txn_id) AS h, label::DOUBLE AS label, amount, "
        f"epoch_ms({LABEL_TIME}) AS label_ms FROM labels"
    )
    joined = _join(con, keys, sql, {})
    at = joined["pos"]
    if len(at) and np.bincount(at).max() > 1:
        order = np.lexsort((joined["label_ms"], at))  # per transaction, the latest label last
        last = np.flatnonzero(np.append(at[order][1:] != at[order][:-1], True))
        joined = {column: values[order][last] for column, values in joined.items()}
    return {
        column: _scatter(len(keys), joined["pos"], joined[column], np.float64("nan"))
        for column in ("label", "amount")
    }


def _join(
    con: duckdb.DuckDBPyConnection, keys: np.ndarray, sql: str, params: dict
) -> dict[str, np.ndarray]:
    """The rows of `sql` (with a column h) that match a transaction, with its position pos."""
    import pyarrow as pa

    positions = np.arange(len(keys), dtype=np.int64)
    con.register("shadow_txns", pa.table({"h": keys, "pos": positions}))
    try:
        query = f"SELECT t.pos, x.* EXCLUDE (h) FROM shadow_txns t JOIN ({sql}) x USING (h)"
        return numpy_columns(con.sql(query, params=params or None))
    finally:
        con.unregister("shadow_txns")


def _scatter(count: int, at: np.ndarray, values: np.ndarray, empty: Any) -> np.ndarray:
    out = np.full(count, empty, dtype=np.asarray(empty).dtype)
    out[at] = values
    return out
