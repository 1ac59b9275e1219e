"""Window aggregates - coverage, latency distributions and hourly figures of the paired columns."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from analysis.ordering import order_statistics
from analysis.paired import PairedWindow

LATENCY_POINTS = (0.5, 0.95, 0.99, 0.999)
CURVE_POINTS = [i / 100 for i in range(1, 100)] + [0.995, 0.999]


def coverage(paired: PairedWindow) -> list[dict[str, float]]:
    """Per candidate: sampled transactions, its rows, errors (rows without a score), pairs."""
    data = paired.columns
    live = np.isfinite(data["s_live"])
    sampled, out = int(live.sum()), []
    for i in range(len(paired.candidates)):
        seen, scored = data[f"seen_{i}"], np.isfinite(data[f"s_{i}"])
        rows, errors = int(seen.sum()), int(np.sum(seen & ~scored))
        pairs = int(np.sum(live & scored))
        out.append(
            {
                "sampled": float(sampled),
                "scored_rows": float(rows),
                "errors": float(errors),
                "transactions": float(pairs),
                "coverage": pairs / sampled if sampled else 0.0,
                "error_rate": errors / rows if rows else 0.0,
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


def request_latency(paired: PairedWindow) -> dict[str, dict[str, Any]]:
    """Per candidate with probes, the latency (ms) of its single-request probes in the window:
    one transaction scored alone now and then (request_latency_us in PREDICTION_SCHEMA), the
    figure a live service's latency budget is about."""
    out = {}
    for i, name in enumerate(paired.candidates):
        probes = paired.columns[f"r_{i}"]
        probes = probes[np.isfinite(probes)]
        if len(probes):
            out[name] = _latency_stats(probes, _POINTS)
    return out


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


BIN_SECONDS = (10, 60, 300, 900, 3600)
"""Widths of the time bins: the widest that still cuts the window's span into MIN_BINS."""
MIN_BINS = 12


def bin_seconds(span_ms: int) -> int:
    """The time-bin width for a span of event times: hours for a day, minutes for an hour,
    10 seconds for a minute, so a short window still shows a series."""
    wide = [w for w in BIN_SECONDS if span_ms / (w * 1000) >= MIN_BINS]
    return wide[-1] if wide else BIN_SECONDS[0]


def timeline(paired: PairedWindow, threshold: float, min_rows: int) -> list[dict[str, Any]]:
    """Per candidate, per time bin (UTC, `bin_seconds` of the window's span) with at least
    `min_rows` pairs: the mean scores of both models, the mean |delta| and the share of
    decisions flipped, over the bin's pairs."""
    data = paired.columns
    times = data["t"]
    span = int(times.max() - times.min()) if len(times) else 0
    width = bin_seconds(span) * 1000
    slots = times // width
    first = int(slots.min()) if len(slots) else 0
    bins, live = slots - first, data["s_live"]
    live_ok, live_alert = np.isfinite(live), live >= threshold
    whole: np.ndarray | None = None  # live's sums over all rows: every fully paired candidate's
    out: list[dict[str, Any]] = []
    for i in range(len(paired.candidates)):
        cand = data[f"s_{i}"]
        both = live_ok & np.isfinite(cand)
        full = bool(both.all())
        at, pl, pc = (bins, live, cand) if full else (bins[both], live[both], cand[both])
        count = np.bincount(at)
        if full and whole is None:
            whole = np.bincount(at, weights=pl, minlength=len(count))
        live_sums = whole if full else np.bincount(at, weights=pl, minlength=len(count))
        flipped = (pc >= threshold) != (live_alert if full else live_alert[both])
        totals = {
            "live_mean": live_sums,
            "candidate_mean": np.bincount(at, weights=pc, minlength=len(count)),
            "mean_abs_delta": np.bincount(at, weights=np.abs(pc - pl), minlength=len(count)),
            "flip_rate": np.bincount(at[flipped], minlength=len(count)),
        }
        series = _bins(first, width, count, totals, max(min_rows, 1))
        out.append({"bin_seconds": width // 1000, "bins": series})
    return out


def _bins(first: int, width: int, count: np.ndarray, totals: dict, least: int) -> list:
    """The bins (`first` + bin, of `width` ms) with at least `least` pairs, totals as means."""
    series = []
    for slot in np.flatnonzero(count >= least).tolist():
        entry = {"transactions": float(count[slot])}
        entry.update({key: float(total[slot] / count[slot]) for key, total in totals.items()})
        moment = dt.datetime.fromtimestamp((first + slot) * width / 1000, tz=dt.UTC)
        series.append({"start": moment.isoformat(), **entry})
    return series
