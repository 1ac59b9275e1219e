"""SQL text helpers shared by the analysis modules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from shadow.dataset import quote

if TYPE_CHECKING:
    import duckdb


def ident(text: str) -> str:
    """A SQL identifier (a column name as written)."""
    return '"' + text.replace('"', '""') + '"'


def inline(sql: str, params: dict[str, Any]) -> str:
    """CREATE TABLE AS cannot be prepared in DuckDB: inline the window's timestamps."""
    for name, value in params.items():
        sql = sql.replace(f"${name}", f"TIMESTAMPTZ {quote(value.isoformat())}")
    return sql


def probe_column(con: duckdb.DuckDBPyConnection) -> str:
    """The single-request latency column of the predictions view; NULL when no object has it
    (all written before it existed)."""
    present = con.sql("SELECT * FROM predictions LIMIT 0").columns
    return "request_latency_us" if "request_latency_us" in present else "NULL::FLOAT"


def numpy_columns(relation: duckdb.DuckDBPyRelation) -> dict[str, np.ndarray]:
    """A query's result as numpy columns, NULL as NaN in float columns. Through Arrow: about
    twice as fast as DuckDB's fetchnumpy on millions of rows."""
    table = relation.to_arrow_table()
    return {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}
