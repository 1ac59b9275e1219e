"""Paired table - one DuckDB row per sampled transaction with the live and every candidate score.

Dedupe and pairing happen in one GROUP BY txn_id: duplicates of (txn_id, model_id) (a replayed
batch, a zombie writer) collapse into the same group and the same FILTER aggregate, so nothing
is counted twice. Only compact numeric columns leave DuckDB.
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

LATENCY_POINTS = (0.5, 0.95, 0.99, 0.999)
CURVE_POINTS = [i / 100 for i in range(1, 100)] + [0.995, 0.999]


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

    def columns(self, names: list[str]) -> dict[str, np.ndarray]:
        """Numeric columns as float64 (NaN for NULL), text columns as object arrays."""
        raw = self.con.sql(f"SELECT {', '.join(names)} FROM paired").fetchnumpy()
        out = {}
        for name, values in raw.items():
            if values.dtype.kind in "fiub":
                out[name] = np.ma.filled(np.ma.asarray(values, dtype=np.float64), np.nan)
            else:
                out[name] = np.asarray(np.ma.filled(np.ma.asarray(values), None), dtype=object)
        return out


def models_in_window(con: duckdb.DuckDBPyConnection, where: str, params: dict) -> dict[str, str]:
    """model_id -> role of every model with rows in the window."""
    sql = f"SELECT DISTINCT model_id, role FROM predictions WHERE {where}"
    return {str(m): str(r) for m, r in con.sql(sql, params=params).fetchall()}


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
    found = models_in_window(con, where, params)
    live_models = sorted(m for m, role in found.items() if role == ROLE_LIVE)
    if candidates is None:
        candidates = sorted(m for m, role in found.items() if role != ROLE_LIVE)
    pairs = f"SELECT txn_id, {_pivot(candidates)} FROM predictions WHERE {where} GROUP BY txn_id"
    select, joins = ["p.*"], ""
    has_labels = register(con, "labels", open_dataset(store, LABELS))
    if has_labels:
        select.append("l.label::DOUBLE AS label, l.amount AS amount")
        joins += f" LEFT JOIN ({LABELS_SQL}) l USING (txn_id)"
    segments = _segment_columns(con, store, window, segment_features or [])
    if segments:
        picks = ", ".join(
            f"any_value({ident(f)})::VARCHAR AS seg_{i}" for i, f in enumerate(segments)
        )
        select += [f"f.seg_{i}" for i in range(len(segments))]
        joins += (
            f" LEFT JOIN (SELECT txn_id, {picks} FROM features GROUP BY txn_id) f USING (txn_id)"
        )
    sql = f"CREATE OR REPLACE TEMP TABLE paired AS WITH p AS ({pairs}) "
    con.execute(_inline(sql + f"SELECT {', '.join(select)} FROM p{joins}", params))
    count = con.sql("SELECT count(*) FROM paired WHERE s_live IS NOT NULL").fetchall()[0]
    return PairedWindow(con, candidates, live_models, int(count[0]), has_labels, segments)


LABELS_SQL = """SELECT txn_id, arg_max(label, label_time) AS label,
    arg_max(amount, label_time) AS amount FROM labels GROUP BY txn_id"""


def _pivot(candidates: list[str]) -> str:
    """One FILTER aggregate per model and column: dedupe and pairing in one GROUP BY."""
    aggregates = [
        "min(event_time) AS event_time",
        f"max(score) FILTER (WHERE role = {quote(ROLE_LIVE)}) AS s_live",
        f"any_value(latency_us) FILTER (WHERE role = {quote(ROLE_LIVE)}) AS l_live",
    ]
    for i, model in enumerate(candidates):
        match = f"model_id = {quote(model)}"
        aggregates += [
            f"max(score) FILTER (WHERE {match}) AS s_{i}",
            f"any_value(latency_us) FILTER (WHERE {match}) AS l_{i}",
            f"count(*) FILTER (WHERE {match}) > 0 AS seen_{i}",
        ]
    return ",\n  ".join(aggregates)


def _segment_columns(con, store: ObjectStore, window: tuple, features: list[str]) -> list[str]:
    """The wanted feature columns the features dataset has (registered as `features`)."""
    if not features:
        return []
    dataset = open_dataset(store, FEATURES, *window)
    found = [f for f in features if dataset is not None and f in dataset.schema.names]
    if found:
        register(con, "features", dataset)
    return found


def _inline(sql: str, params: dict[str, Any]) -> str:
    """CREATE TABLE AS cannot be prepared in DuckDB: inline the window's timestamps."""
    for name, value in params.items():
        sql = sql.replace(f"${name}", f"TIMESTAMPTZ {quote(value.isoformat())}")
    return sql


def coverage(paired: PairedWindow) -> list[dict[str, float]]:
    """Per candidate: sampled transactions, its rows, errors (rows without a score), pairs."""
    parts = ["count(*) FILTER (WHERE s_live IS NOT NULL)"]
    for i in range(len(paired.candidates)):
        parts += [
            f"count(*) FILTER (WHERE seen_{i})",
            f"count(*) FILTER (WHERE seen_{i} AND s_{i} IS NULL)",
            f"count(*) FILTER (WHERE s_live IS NOT NULL AND s_{i} IS NOT NULL)",
        ]
    row = paired.con.sql(f"SELECT {', '.join(parts)} FROM paired").fetchall()[0]
    sampled, out = row[0], []
    for i in range(len(paired.candidates)):
        seen, errors, pairs = row[1 + 3 * i : 4 + 3 * i]
        out.append(
            {
                "sampled": float(sampled),
                "scored_rows": float(seen),
                "errors": float(errors),
                "transactions": float(pairs),
                "coverage": pairs / sampled if sampled else 0.0,
                "error_rate": errors / seen if seen else 0.0,
            }
        )
    return out


_LATENCY = ("count", "mean", "p50", "p95", "p99", "p999", "std", "max")


def latency(paired: PairedWindow) -> dict[str, dict[str, float]]:
    """Latency distribution of every model (column l_live, l_0...) in milliseconds."""
    columns = ["l_live"] + [f"l_{i}" for i in range(len(paired.candidates))]
    parts = []
    for c in columns:
        points = ", ".join(f"quantile_cont({c}, {q})" for q in LATENCY_POINTS)
        parts.append(f"count({c}), avg({c}), {points}, stddev_samp({c}), max({c})")
    row = paired.con.sql(f"SELECT {', '.join(parts)} FROM paired").fetchall()[0]
    out = {}
    for k, column in enumerate(columns):
        values = row[k * len(_LATENCY) : (k + 1) * len(_LATENCY)]
        stats = {
            name: float(v) / 1000 if v is not None else float("nan")
            for name, v in zip(_LATENCY, values, strict=True)
        }
        stats["count"] = float(values[0] or 0)
        out[column] = stats
    curves = ", ".join(f"quantile_cont({c}, $points)" for c in columns)
    points = [round(q, 3) for q in CURVE_POINTS]
    row = paired.con.sql(f"SELECT {curves} FROM paired", params={"points": points}).fetchall()[0]
    for column, curve in zip(columns, row, strict=True):
        if curve is not None and out[column]["count"]:
            out[column]["curve"] = {"q": points, "ms": [v / 1000 for v in curve]}
    return out


def hourly(paired: PairedWindow, threshold: float, min_rows: int) -> list[list[dict]]:
    """Per candidate, per hour with enough pairs: mean scores, mean |delta|, flip rate."""
    parts = []
    for i in range(len(paired.candidates)):
        both = f"s_live IS NOT NULL AND s_{i} IS NOT NULL"
        flip = f"(s_{i} >= {float(threshold)}) <> (s_live >= {float(threshold)})"
        parts.append(
            f"count(*) FILTER (WHERE {both}), avg(s_live) FILTER (WHERE {both}), "
            f"avg(s_{i}), avg(abs(s_{i} - s_live)), avg(CASE WHEN {flip} THEN 1 ELSE 0 END)"
        )
    sql = f"SELECT date_trunc('hour', event_time) AS hour, {', '.join(parts)} FROM paired "
    rows = paired.con.sql(sql + "GROUP BY hour ORDER BY hour").fetchall()
    keys = ["transactions", "live_mean", "candidate_mean", "mean_abs_delta", "flip_rate"]
    out: list[list[dict]] = []
    for i in range(len(paired.candidates)):
        series = []
        for row in rows:
            values = row[1 + 5 * i : 6 + 5 * i]
            if (values[0] or 0) >= min_rows:
                entry = {k: float(v) for k, v in zip(keys, values, strict=True)}
                series.append({"hour": row[0].isoformat(), **entry})
        out.append(series)
    return out
