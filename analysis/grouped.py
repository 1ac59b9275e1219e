"""Grouped pairing - the paired columns of a window by one GROUP BY txn_id in DuckDB.

The general path (analysis.positional is the fast one): dedupe and pairing happen in one hash
aggregate, so duplicates of (txn_id, model_id) (a replayed batch, a zombie writer) collapse
into the same group and the same FILTER aggregate and nothing is counted twice. Feature
(segment) and label rows are deduped in aggregates of their own and joined to the pairs. Where
it is cheaper, strings become integers first: the model as a small key, segment values as
codes. Only compact numeric columns leave DuckDB.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from analysis import dedupe
from analysis.sql import ident, inline, numpy_columns, probe_column, quote
from shadow.predictions import ROLE_LIVE

if TYPE_CHECKING:
    import duckdb


def pair(
    con: duckdb.DuckDBPyConnection,
    where: str,
    params: dict,
    models: tuple[list[str], list[str] | None],
    segments: dict[str, list[str]],
    labels: bool,
) -> dict[str, np.ndarray]:
    """Per transaction: keys (hash of txn_id), t (event time, ms), s_live/l_live and
    s_i/l_i/r_i/seen_i per candidate, seg_<k> codes and label/amount when asked. `models`:
    the candidates and the live model ids (None: tell live rows by the role column)."""
    candidates, live = models
    select, joins = "p.*", ""
    if segments:
        select += "".join(f", f.seg_{i}" for i in range(len(segments)))
        joins += f" LEFT JOIN ({features_sql(segments, where)}) f USING (txn_id)"
    if labels:
        select += ", l.label, l.amount"
        joins += f" LEFT JOIN ({labels_sql()}) l USING (txn_id)"
    probe = probe_column(con)
    pairs = _pairs_sql(candidates, where, live, probe)
    sql = f"CREATE OR REPLACE TEMP TABLE paired AS WITH p AS ({pairs}) "
    # row order is irrelevant while building (~25 % faster); the one read afterwards fetches
    # every column at once, so they stay aligned with each other
    con.execute("SET preserve_insertion_order = false")
    con.execute(inline(sql + f"SELECT {select} FROM p{joins}", params))
    con.execute("SET preserve_insertion_order = true")
    columns = _arrays(con, len(candidates), segments, labels)
    repeated = columns.pop("repeated")
    column_sql = model_key(candidates, live)
    dedupe.resolve(con, (where, params), column_sql, probe, columns, columns["keys"][repeated])
    return columns


def _arrays(
    con: duckdb.DuckDBPyConnection, count: int, segments: dict[str, list[str]], labels: bool
) -> dict[str, np.ndarray]:
    """The paired table as numpy columns, NULL as NaN (plain arrays, no masked copies)."""
    nan = {"s": "'NaN'::DOUBLE", "l": "'NaN'::FLOAT", "r": "'NaN'::FLOAT"}
    names = ["s_live", "l_live"] + [f"{p}_{i}" for i in range(count) for p in ("s", "l", "r")]
    select = ["hash(txn_id) AS keys", "epoch_ms(event_time) AS t", "repeated"]
    select += [f"coalesce({c}, {nan[c[0]]}) AS {c}" for c in names]
    select += [f"seen_{i}" for i in range(count)]
    if labels:
        select += ["coalesce(label, 'NaN'::DOUBLE) AS label"]
        select += ["coalesce(amount, 'NaN'::DOUBLE) AS amount"]
    for i, values in enumerate(segments.values()):
        select.append(f"coalesce(seg_{i}, 0)::{INTEGER[compact(len(values))]} AS seg_{i}")
    return numpy_columns(con.sql(f"SELECT {', '.join(select)} FROM paired"))


def compact(segments: int) -> type:
    """The smallest integer type for codes 0..segments: numpy sorts 8/16-bit integers stably
    with a radix sort (several times faster than a 32-bit merge sort)."""
    if segments < 2**7:
        return np.int8
    return np.int16 if segments < 2**15 else np.int32


INTEGER: dict[type, str] = {np.int8: "TINYINT", np.int16: "SMALLINT", np.int32: "INTEGER"}


def _pairs_sql(
    candidates: list[str], where: str, live: list[str] | None, probe: str = "request_latency_us"
) -> str:
    """Pairing in ONE hash aggregate on txn_id. Each row gets a small integer model key first,
    so the FILTER aggregates compare integers, not strings. A transaction with more rows than
    models (a model scored it twice) is marked `repeated` for analysis.dedupe."""
    rows = (
        f"SELECT txn_id, event_time, ({model_key(candidates, live)})::TINYINT AS k, score, "
        f"coalesce(score, {_NONE}) AS marked, latency_us, {probe} AS request_latency_us "
        f"FROM predictions WHERE {where}"
    )
    grouped = f"SELECT txn_id, {_pivot(candidates)} FROM ({rows}) GROUP BY txn_id"
    models = " + ".join(
        f"(s_{c} IS NOT NULL)::INTEGER" for c in ["live"] + [str(i) for i in range(len(candidates))]
    )
    return (
        f"SELECT * EXCLUDE (copies) REPLACE ({_unmark(candidates)}), "
        f"{_seen(candidates)}copies > {models} AS repeated FROM ({grouped})"
    )


def model_key(candidates: list[str], live: list[str] | None) -> str:
    """0 for a live row, i + 1 for candidate i's rows, NULL for other models. `live`: the
    live model ids when each model has one role in the window, so the rows are told apart
    by model_id alone and the scan skips the role column; None: by the role column."""
    if live is None:
        whens = [f"WHEN role = {quote(ROLE_LIVE)} THEN 0"]
    else:
        whens = [f"WHEN model_id IN ({', '.join(quote(m) for m in live)}) THEN 0"] if live else []
    whens += [f"WHEN model_id = {quote(m)} THEN {i + 1}" for i, m in enumerate(candidates)]
    return f"CASE {' '.join(whens)} END" if whens else "NULL"


def _pivot(candidates: list[str]) -> str:
    """One FILTER aggregate per model and column on the integer key k, and the count of model
    rows. A row without a score counts as -inf (`marked`, computed once per row), so max() is
    NULL only for a model that did not see the transaction and -inf only when none of its rows
    has a score. Where a model has several rows, these maxima are provisional: analysis.dedupe
    replaces them with the copy that counts."""
    aggregates = [
        "min(event_time) AS event_time",
        "count(k) AS copies",
        "max(marked) FILTER (WHERE k = 0) AS s_live",
        "max(latency_us) FILTER (WHERE k = 0) AS l_live",
    ]
    for i in range(len(candidates)):
        aggregates += [
            f"max(marked) FILTER (WHERE k = {i + 1}) AS s_{i}",
            f"max(latency_us) FILTER (WHERE k = {i + 1}) AS l_{i}",
            f"max(request_latency_us) FILTER (WHERE k = {i + 1}) AS r_{i}",
        ]
    return ",\n  ".join(aggregates)


_NONE = "'-inf'::DOUBLE"


def _unmark(candidates: list[str]) -> str:
    names = ["live"] + [str(i) for i in range(len(candidates))]
    return ", ".join(f"nullif(s_{c}, {_NONE}) AS s_{c}" for c in names)


def _seen(candidates: list[str]) -> str:
    return "".join(f"s_{i} IS NOT NULL AS seen_{i}, " for i in range(len(candidates)))


def features_sql(segments: dict[str, list[str]], where: str, key: str = "txn_id") -> str:
    """One row per txn_id of the window's features, each segment value as its integer code:
    a hash join on integers after the pairing costs less than feeding strings through it.
    `key`: what identifies the row (txn_id, or its hash for analysis.keyed)."""
    codes = [_code(ident(f), names) for f, names in segments.items()]
    picks = ", ".join(f"any_value({code}) AS seg_{i}" for i, code in enumerate(codes))
    return f"SELECT {key}, {picks} FROM features WHERE {where} GROUP BY txn_id"


def codes_sql(segments: dict[str, list[str]]) -> str:
    """The segment code columns seg_<k> of a features row."""
    codes = [_code(ident(f), names) for f, names in segments.items()]
    return ", ".join(f"{code} AS seg_{i}" for i, code in enumerate(codes))


def _code(column: str, names: list[str]) -> str:
    """The 1-based position of the column's value in `names` (0: no value)."""
    values = ", ".join(quote(v) for v in names)
    return f"coalesce(list_position([{values}], {column}::VARCHAR), 0)::INTEGER"


# the latest label of a transaction wins; a label without label_time counts as the oldest.
# Features and labels are deduped in aggregates of their own and joined one after the other:
# ~15 % less work than one aggregate over their union.
LABEL_TIME = "coalesce(label_time, TIMESTAMPTZ '1970-01-01 00:00:00+00')"


def labels_sql(key: str = "txn_id") -> str:
    """One row per txn_id of the labels: label and amount of the latest."""
    return (
        f"SELECT {key}, arg_max(label::DOUBLE, {LABEL_TIME}) AS label, "
        f"arg_max(amount, {LABEL_TIME}) AS amount FROM labels GROUP BY txn_id"
    )
