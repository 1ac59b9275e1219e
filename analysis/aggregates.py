"""Window aggregates - coverage, latency distributions and hourly figures of the paired table."""

from __future__ import annotations

from typing import Any

import numpy as np

from analysis.ordering import order_statistics
from analysis.paired import PairedWindow, quote

LATENCY_POINTS = (0.5, 0.95, 0.99, 0.999)
CURVE_POINTS = [i / 100 for i in range(1, 100)] + [0.995, 0.999]


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


_POINTS = sorted(set(LATENCY_POINTS) | {round(q, 3) for q in CURVE_POINTS})
"""The quantiles every latency distribution reports: the named ones and the CDF curve's."""


def latency(arrays: dict[str, Any], columns: list[str]) -> dict[str, dict[str, Any]]:
    """Latency distribution (ms) of every model column l_live, l_0...: mean, p50..p99.9, std,
    max and a quantile curve for the CDF plot. Exact quantiles from the ~200 order statistics
    they need (`order_statistics`), not a sort: DuckDB's exact quantile_cont with a list of 100
    points was several times slower on 2.5 M rows, and a float32 sort about 4x slower."""
    out = {}
    for column in columns:
        values = arrays[column]
        out[column] = _latency_stats(values[np.isfinite(values)], _POINTS)
    return out


def request_latency(paired: PairedWindow, where: str, params: dict) -> dict[str, dict[str, Any]]:
    """Per candidate, the latency (ms) of its single-request probes in the window: one
    transaction scored alone per scored chunk (request_latency_us in PREDICTION_SCHEMA), the
    figure a live service's latency budget is about. Empty when no file has the column."""
    con, candidates = paired.con, paired.candidates
    if not candidates or "request_latency_us" not in _columns(con):
        return {}
    models = ", ".join(quote(m) for m in candidates)
    probes = (  # deduped on (txn_id, model_id) as every reader does
        "SELECT model_id, txn_id, any_value(request_latency_us) AS probe FROM predictions "
        f"WHERE {where} AND model_id IN ({models}) AND request_latency_us IS NOT NULL "
        "GROUP BY ALL"
    )
    sql = f"SELECT model_id::VARCHAR, list(probe) FROM ({probes}) GROUP BY ALL"
    return {
        str(model): _latency_stats(np.asarray(values, dtype=np.float32), _POINTS)
        for model, values in con.sql(sql, params=params).fetchall()
    }


def _columns(con: Any) -> list[str]:
    return con.sql("SELECT * FROM predictions LIMIT 0").columns


def _latency_stats(values: np.ndarray, points: list[float]) -> dict[str, Any]:
    """The figures of finite float32 latencies (us), in ms. Quantiles interpolate linearly
    between order statistics, as np.quantile and DuckDB's quantile_cont do."""
    n = len(values)
    if not n:
        return {"count": 0.0}
    position = np.asarray(points, dtype=np.float64) * (n - 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, n - 1)
    ranks = np.unique(np.r_[low, high, n - 1])
    ranked = order_statistics(values, ranks).astype(np.float64) / 1000  # exact widening
    at_low, at_high = ranked[np.searchsorted(ranks, low)], ranked[np.searchsorted(ranks, high)]
    curve = at_low + (at_high - at_low) * (position - low)
    at = dict(zip(points, curve.tolist(), strict=True))
    ms = values.astype(np.float64) / 1000
    stats: dict[str, Any] = {
        "count": float(n),
        "mean": float(ms.mean()),
        "std": float(ms.std(ddof=1)) if n > 1 else 0.0,
        "max": float(ranked[-1]),
    }
    stats.update({f"p{_label(q)}": at[q] for q in LATENCY_POINTS})
    stats["curve"] = {"q": points, "ms": curve.tolist()}
    return stats


def _label(q: float) -> str:
    """0.5 -> 50, 0.999 -> 999: the p-names of the evidence."""
    return f"{q * 100:g}".replace(".", "")


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
    # UTC hours by integer division: ~5x cheaper than date_trunc on a TIMESTAMPTZ
    hour = "epoch_ms(event_time) // 3600000"
    sql = f"SELECT to_timestamp(any_value({hour}) * 3600) AS hour, {', '.join(parts)} FROM paired "
    rows = paired.con.sql(sql + f"GROUP BY {hour} ORDER BY hour").fetchall()
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
