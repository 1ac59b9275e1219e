"""Positional pairing - the paired columns of a window without a GROUP BY over every row.

The worker writes each scored chunk model after model, every model's block in the chunk's
transaction order (shadow.prediction_store). So rows pair by position: consecutive runs of one
column (live, or candidate i) with equal lengths, distinct columns and the same txn_id hashes
row for row make one chunk, and its first run's rows are its transactions. A run that does not
fit (another writer, a chunk whose blocks differ) is a chunk of its own. Transactions met in
more than one chunk (a replayed batch, a zombie writer's copy) are then merged on their txn_id
hash, once DuckDB has confirmed that each merged hash stands for one txn_id: duplicates count
once, with the same figures as the GROUP BY of analysis.grouped. DuckDB scans and hashes
txn_id; numpy copies whole runs. On 10 M rows, about a third of the GROUP BY's time.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from analysis import dedupe
from analysis.grouped import model_key
from analysis.sql import numpy_columns, probe_column, quote

if TYPE_CHECKING:
    import duckdb

MIN_RUN = 16
"""Below this mean run length (rows interleaved model by model, not the worker's layout) a
Python step per run costs more than the GROUP BY: pair with analysis.grouped instead."""

PEAK_BYTES_PER_ROW = 100
"""Memory a fetched row takes at the peak: its Arrow columns and their numpy copies (81 bytes
measured on 10 M rows, with some room). A window whose rows would take more than a quarter of
the machine's memory is paired by the GROUP BY, which DuckDB can spill to disk."""


def fits(con: duckdb.DuckDBPyConnection, where: str, params: dict) -> bool:
    """Whether the window's rows fit in memory for positional pairing (PEAK_BYTES_PER_ROW)."""
    sql = f"SELECT count(*) FROM predictions WHERE {where}"
    rows = con.sql(sql, params=params).fetchall()[0][0]
    return rows * PEAK_BYTES_PER_ROW <= memory_bytes() // 4


def memory_bytes() -> int:
    """The machine's physical memory."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


@dataclass
class Rows:
    """The window's rows of the wanted models, in scan order (each object's rows in order)."""

    h: np.ndarray  # uint64: hash(txn_id)
    key: np.ndarray  # int16: 0..L-1 the live models, L + i candidate i
    score: np.ndarray  # float64, NaN: no score
    latency: np.ndarray  # float32, NaN: none
    request: np.ndarray  # float32, NaN: no single-request probe
    time_us: np.ndarray  # int64: event_time


def fetch(con: duckdb.DuckDBPyConnection, where: str, params: dict, models: list[str]) -> Rows:
    """The rows of `models` (live ones first) in [start, end), as numpy columns (NULL as
    NaN: columns without nulls convert cheapest). DuckDB keeps the scan order."""
    keys = " ".join(f"WHEN model_id = {quote(m)} THEN {i}" for i, m in enumerate(models))
    names = ", ".join(quote(m) for m in models)
    nan = "'NaN'::FLOAT"
    sql = (
        f"SELECT hash(txn_id) AS h, (CASE {keys} END)::SMALLINT AS k, "
        f"coalesce(score, 'NaN'::DOUBLE) AS s, coalesce(latency_us, {nan}) AS l, "
        f"coalesce({probe_column(con)}, {nan}) AS r, event_time AS t "
        f"FROM predictions WHERE {where} AND model_id IN ({names})"
    )
    c = numpy_columns(con.sql(sql, params=params))
    time_us = c["t"].astype("datetime64[us]", copy=False).view(np.int64)  # as stored
    return Rows(c["h"], c["k"], c["s"], c["l"], c["r"], time_us)


@dataclass
class Chunk:
    """Runs of rows that are the same transactions: (column, first row) of each, `length`."""

    runs: list[tuple[int, int]]
    length: int


def chunks(column: np.ndarray, h: np.ndarray) -> list[Chunk] | None:
    """Cut the rows into runs of one column and group them into chunks: a run joins the
    chunk before it when it has the first run's length, a column the chunk lacks and the
    same hashes row for row; otherwise it starts a chunk. None: runs too short (MIN_RUN)."""
    n = len(column)
    starts = np.flatnonzero(np.concatenate(([n > 0], column[1:] != column[:-1])))
    if len(starts) * MIN_RUN > n:
        return None
    lengths = np.diff(np.append(starts, n)).tolist()
    out: list[Chunk] = []
    for c, start, length in zip(column[starts].tolist(), starts.tolist(), lengths, strict=True):
        last = out[-1] if out else None
        if last is not None and _fits(last, c, start, length, h):
            last.runs.append((c, start))
        else:
            out.append(Chunk([(c, start)], length))
    return out


def _fits(chunk: Chunk, column: int, start: int, length: int, h: np.ndarray) -> bool:
    if length != chunk.length or any(c == column for c, _ in chunk.runs):
        return False
    first = chunk.runs[0][1]
    return bool(np.array_equal(h[start : start + length], h[first : first + length]))


def pivot(rows: Rows, live: int, candidates: int) -> dict[str, np.ndarray] | None:
    """One entry per chunk position: keys, t (ms), s_live/l_live, s_i/l_i/r_i/seen_i
    (`live`, `candidates`: how many models of each; every live model fills s_live)."""
    lookup = np.array([0] * live + list(range(1, candidates + 1)), dtype=np.int16)
    found = chunks(lookup[rows.key], rows.h)
    if found is None:
        return None
    count = sum(chunk.length for chunk in found)
    names = ["live"] + [str(i) for i in range(candidates)]
    out = {"keys": np.empty(count, np.uint64), "t": np.empty(count, np.int64)}
    for c, name in enumerate(names):
        out[f"s_{name}"] = np.full(count, np.nan)
        out[f"l_{name}"] = np.full(count, np.nan, np.float32)
        if c:
            out[f"r_{name}"] = np.full(count, np.nan, np.float32)
            out[f"seen_{name}"] = np.zeros(count, np.bool_)
    sources = {"s": rows.score, "l": rows.latency, "r": rows.request}
    at = 0
    for chunk in found:
        first, end = chunk.runs[0][1], at + chunk.length
        out["keys"][at:end] = rows.h[first : first + chunk.length]
        out["t"][at:end] = rows.time_us[first : first + chunk.length]
        for c, start in chunk.runs:
            for prefix in ("s", "l", "r") if c else ("s", "l"):
                out[f"{prefix}_{names[c]}"][at:end] = sources[prefix][start : start + chunk.length]
            if c:
                out[f"seen_{names[c]}"][at:end] = True
        at = end
    out["t"] //= 1000
    return out


def _in_window(rows: Rows, live: list[str], candidates: list[str], named: bool) -> tuple:
    """The live models with rows in the window, and the candidates (all of them when `named`,
    else those with rows, as a scan of the window finds them); rows' keys renumbered."""
    count = len(live)
    keep = np.bincount(rows.key, minlength=count + len(candidates)) > 0
    if named:
        keep[count:] = True
    if not keep.all():
        rows.key = (np.cumsum(keep) - 1).astype(np.int16)[rows.key]
    live = [m for m, kept in zip(live, keep[:count], strict=True) if kept]
    return live, [m for m, kept in zip(candidates, keep[count:], strict=True) if kept]


def duplicated(keys: np.ndarray) -> bool:
    """Whether a txn_id hash occurs twice (a sort: ~0.15 s for 2.5 M transactions)."""
    ordered = np.sort(keys)
    return bool(np.any(ordered[1:] == ordered[:-1]))


_FOLDS = {"s": np.fmax, "l": np.fmax, "r": np.fmax, "seen": np.logical_or, "t": np.minimum}


def merge(columns: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """One entry per txn_id hash: seen when any copy was, the earliest event time, and a
    provisional score, latency and probe (the highest) that analysis.dedupe replaces with the
    copy that counts. Also returns the hashes that occurred more than once."""
    order = np.argsort(columns["keys"], kind="stable")
    keys = columns["keys"][order]
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    out = {"keys": keys[starts]}
    for name, values in columns.items():
        if name != "keys":
            out[name] = _FOLDS[name.split("_")[0]].reduceat(values[order], starts)
    counts = np.diff(np.append(starts, len(keys)))
    return out, out["keys"][counts > 1]


def collides(con: duckdb.DuckDBPyConnection, where: str, params: dict, keys: np.ndarray) -> bool:
    """Whether one of these merged hashes stands for more than one txn_id in the window."""
    import pyarrow as pa

    con.register("shadow_merged_keys", pa.table({"h": keys}))
    try:
        sql = (
            "SELECT count(*) FROM (SELECT hash(txn_id) AS h FROM predictions "
            f"WHERE {where} AND hash(txn_id) IN (SELECT h FROM shadow_merged_keys) "
            "GROUP BY h HAVING count(DISTINCT txn_id) > 1)"
        )
        return bool(con.sql(sql, params=params).fetchall()[0][0])
    finally:
        con.unregister("shadow_merged_keys")


@dataclass
class Pivot:
    """The paired columns (see analysis.paired.PairedWindow) and the models they hold."""

    columns: dict[str, np.ndarray]
    live: list[str]  # the live models with rows in the window
    candidates: list[str]


def pair(
    con: duckdb.DuckDBPyConnection,
    window: tuple[str, dict],
    live: list[str],
    candidates: list[str],
    named: bool,
    meanwhile: Callable[[], object] | None = None,
) -> Pivot | None:
    """The paired columns of the window (`window`: its WHERE clause and parameters), one entry
    per transaction. `named`: the candidates were asked for by name, so each is kept even
    without rows. `meanwhile`: DuckDB work for this thread while another pivots the rows (the
    pivot and its duplicate check use one core). None when there is no model to pair, the
    rows would not fit in memory, are not in the worker's layout (MIN_RUN) or two txn_ids
    share a hash (about once in 10^6 windows of 5 M transactions): then GROUP BY."""
    where, params = window
    if not live + candidates or not fits(con, where, params):
        return None
    rows = fetch(con, where, params, live + candidates)
    live, candidates = _in_window(rows, live, candidates, named)
    with ThreadPoolExecutor(max_workers=1) as side:
        pivoted = side.submit(_pivot_checked, rows, len(live), len(candidates))
        if meanwhile is not None:
            meanwhile()
        columns, repeats = pivoted.result()
    if columns is None:
        return None
    if repeats:
        columns, repeated = merge(columns)
        if collides(con, where, params, repeated):
            return None
        column_sql = model_key(candidates, live)
        dedupe.resolve(con, window, column_sql, probe_column(con), columns, repeated)
    return Pivot(columns, live, candidates)


def _pivot_checked(rows: Rows, live: int, candidates: int) -> tuple[dict | None, bool]:
    """The pivot and whether a txn_id hash occurs twice in it."""
    columns = pivot(rows, live, candidates)
    return columns, columns is not None and duplicated(columns["keys"])
