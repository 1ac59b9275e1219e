"""Paired window - one entry per sampled transaction with the live and every candidate score.

Two ways lead to the same columns. analysis.positional pairs rows by their place in the
worker's objects (the usual case, about 3x less work); analysis.grouped pairs them with one
GROUP BY txn_id in DuckDB (when a model has two roles in the window, or two txn_ids share a
hash). Both dedupe: a transaction written twice (a replayed batch, a zombie writer) counts once.
The models of the window come from the objects' footers (MODELS_KEY) or, for objects without
them, from a scan.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from analysis import grouped, keyed, positional
from analysis.sql import ident
from shadow.dataset import footer_models, open_dataset, register, window_sql
from shadow.predictions import FEATURES, LABELS, PREDICTIONS, ROLE_LIVE

if TYPE_CHECKING:
    import duckdb

    from shadow.objectstore import ObjectStore


@dataclass
class PairedWindow:
    """The paired columns of one window and candidate list, one entry per transaction:
    keys (a 64-bit hash of txn_id, an order-free identity for sampling), t (event time, ms),
    s_live/l_live, and per candidate i s_i (score), l_i (latency), r_i (single-request probe),
    seen_i (it has a row); label/amount with labels; seg_<k> segment codes (0 = no value).
    Scores and latencies are NaN where missing."""

    candidates: list[str]
    live_models: list[str]
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    has_labels: bool = False
    segments: list[str] = field(default_factory=list)
    segment_names: dict[str, list[str]] = field(default_factory=dict)
    """Per segment feature, its values in the window: seg_<k> holds 1 + the value's index."""
    path: str = "positional"
    pending: Callable[[], dict[str, np.ndarray]] | None = field(default=None, repr=False)
    """Joins still to run (segment codes, labels): arrays() runs them, so the sorts of the
    scores can start first."""

    @property
    def transactions(self) -> int:
        """Sampled transactions: those with a live score."""
        live = self.columns.get("s_live")
        return 0 if live is None else int(np.isfinite(live).sum())

    def arrays(self) -> dict[str, Any]:
        """The columns (the pending joins run first), each segment's codes as (codes, value
        names)."""
        if self.pending is not None:
            self.columns.update(self.pending())
            self.pending = None
        out: dict[str, Any] = dict(self.columns)
        for i, feature in enumerate(self.segments):
            out[f"seg_{i}"] = (out[f"seg_{i}"], self.segment_names[feature])
        return out


def models_in_window(
    con: duckdb.DuckDBPyConnection, where: str, params: dict
) -> list[tuple[str, str]]:
    """Every (model_id, role) with rows in the window: a scan."""
    sql = f"SELECT DISTINCT model_id, role FROM predictions WHERE {where}"
    return [(str(m), str(r)) for m, r in con.sql(sql, params=params).fetchall()]


def build(
    con: duckdb.DuckDBPyConnection,
    store: ObjectStore,
    window: tuple[dt.datetime | None, dt.datetime | None],
    candidates: list[str] | None,
    segment_features: list[str] | None = None,
    skip: frozenset[str] = frozenset(),
) -> PairedWindow:
    """Register the window's datasets and pair them (labels and segments joined); `skip`: keys
    of objects to leave out."""
    start, end = window
    dataset = open_dataset(store, PREDICTIONS, start, end, skip)
    if not register(con, "predictions", dataset):
        return PairedWindow(list(candidates or []), [])
    where, params = window_sql(start, end)
    roles = footer_models(dataset)  # the objects' models: some may lie outside the window
    scanned = roles is None or len(roles) != len(dict(roles))
    if roles is None or scanned:
        roles = models_in_window(con, where, params)
    live, chosen, one_role = _models(roles, candidates)
    features = _segment_columns(con, store, window, segment_features or [], skip)
    segments = {f: _segment_values(con, f, where, params) for f in features}
    labels = register(con, "labels", open_dataset(store, LABELS, skip=skip))
    if one_role:  # a model in two roles is told apart by the role column: GROUP BY
        wanted = (live, chosen, candidates is not None)
        found = _by_position(con, (where, params), wanted, segments, labels)
        if found is not None:
            return found
    if not scanned:  # the GROUP BY takes the models it is given: those of the window
        live, chosen, one_role = _models(models_in_window(con, where, params), candidates)
    models = (chosen, live if one_role else None)
    columns = grouped.pair(con, where, params, models, segments, labels)
    return PairedWindow(chosen, live, columns, labels, list(segments), segments, "grouped")


def _by_position(
    con: duckdb.DuckDBPyConnection,
    window: tuple[str, dict],
    models: tuple[list[str], list[str], bool],
    segments: dict[str, list[str]],
    labels: bool,
) -> PairedWindow | None:
    """The positional path (None: take the GROUP BY). The features' rows are read while the
    predictions are pivoted; segment codes and labels join when the arrays are first asked
    for, so the sorts of the scores can start first."""
    where, params = window
    early: dict[str, dict[str, np.ndarray]] = {}

    def read_features() -> None:
        early["rows"] = keyed.segment_rows(con, where, params, segments)

    pivot = positional.pair(con, window, *models, read_features if segments else None)
    if pivot is None:
        return None
    keys = pivot.columns["keys"]

    def joins() -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        if segments:
            out = keyed.segment_codes(con, where, params, segments, keys, early.get("rows"))
        return out | (keyed.labels(con, keys) if labels else {})

    found = (pivot.candidates, pivot.live, pivot.columns)
    return PairedWindow(*found, labels, list(segments), segments, pending=joins)


def _models(
    roles: list[tuple[str, str]], candidates: list[str] | None
) -> tuple[list[str], list[str], bool]:
    """The live models, the candidates (those asked for, else every other model) and whether
    each model has one role."""
    found = dict(roles)
    live = sorted(m for m, role in found.items() if role == ROLE_LIVE)
    if candidates is None:
        candidates = sorted(m for m, role in found.items() if role != ROLE_LIVE)
    return live, list(candidates), len(roles) == len(found)


def _segment_columns(
    con: duckdb.DuckDBPyConnection,
    store: ObjectStore,
    window: tuple[dt.datetime | None, dt.datetime | None],
    features: list[str],
    skip: frozenset[str],
) -> list[str]:
    """The wanted feature columns the features dataset has (registered as `features`)."""
    if not features:
        return []
    dataset = open_dataset(store, FEATURES, *window, skip)
    found = [f for f in features if dataset is not None and f in dataset.schema.names]
    if found:
        register(con, "features", dataset)
    return found


def _segment_values(con, feature: str, where: str, params: dict) -> list[str]:
    """The distinct values of a feature column in the window, sorted (their codes' order)."""
    column = f"{ident(feature)}::VARCHAR"
    sql = f"SELECT DISTINCT {column} FROM features WHERE {where} AND {column} IS NOT NULL"
    return sorted(str(row[0]) for row in con.sql(sql, params=params).fetchall())
