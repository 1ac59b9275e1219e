"""Dedupe - the copy that counts when a model scored a transaction more than once.

Both pairing paths first fold the copies cheaply (analysis.positional by position,
analysis.grouped in its GROUP BY) and mark the transactions met more than once; `resolve` then
asks DuckDB for those transactions' rows alone and writes the copy chosen by
shadow.dataset.COPY_ORDER (a valid score wins over a missing or NaN one, then the latest write)
into the paired columns: one rule, one query, whichever path paired the window.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from analysis.sql import numpy_columns
from shadow.dataset import COPY_ORDER

if TYPE_CHECKING:
    import duckdb

_TABLE = "shadow_repeated_keys"


def resolve(
    con: duckdb.DuckDBPyConnection,
    window: tuple[str, dict],
    column_sql: str,
    probe: str,
    columns: dict[str, np.ndarray],
    repeated: np.ndarray,
) -> None:
    """Overwrite score, latency and probe of the entries whose txn hash is in `repeated` with
    the winning copy of each model column. `column_sql`: each row's column, 0 for live and
    i + 1 for candidate i (NULL: a model not compared)."""
    import pyarrow as pa

    if not len(repeated):
        return
    where, params = window
    con.register(_TABLE, pa.table({"h": np.asarray(repeated, np.uint64)}))
    try:
        sql = (
            f"SELECT hash(txn_id) AS h, ({column_sql})::SMALLINT AS c, "
            "coalesce(score, 'NaN'::DOUBLE) AS s, coalesce(latency_us, 'NaN'::FLOAT) AS l, "
            f"coalesce({probe}, 'NaN'::FLOAT) AS r FROM predictions "
            f"WHERE {where} AND hash(txn_id) IN (SELECT h FROM {_TABLE}) AND c IS NOT NULL "
            f"QUALIFY row_number() OVER (PARTITION BY txn_id, c ORDER BY {COPY_ORDER}) = 1"
        )
        winners = numpy_columns(con.sql(sql, params=params))
    finally:
        con.unregister(_TABLE)
    _write(columns, winners)


def _write(columns: dict[str, np.ndarray], winners: dict[str, np.ndarray]) -> None:
    """Put each winning copy in its entry (found by its txn hash) and model column."""
    keys = columns["keys"]
    wanted = np.flatnonzero(np.isin(keys, winners["h"]))
    ordered = wanted[np.argsort(keys[wanted], kind="stable")]
    entry = ordered[np.searchsorted(keys[ordered], winners["h"])]
    for c in np.unique(winners["c"]).tolist():
        mine = winners["c"] == c
        name = "live" if c == 0 else str(c - 1)
        for part in ("s", "l", "r") if c else ("s", "l"):
            column = columns[f"{part}_{name}"]
            if not column.flags.writeable:  # a zero-copy view of DuckDB's Arrow result
                column = columns[f"{part}_{name}"] = column.copy()
            column[entry[mine]] = winners[part][mine]
