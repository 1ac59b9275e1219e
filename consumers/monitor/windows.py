"""Monitor windows - a candidate's tumbling-window tallies, mergeable, and the figures judged.

A window's value is a few counters and two small histograms, never the samples:

- scores: 10 fixed bins on [0, 1] for the candidate and for the live model on the same
  transactions; the streaming PSI compares those two (fixed bins, not live-quantile bins, so
  windows and partitions merge by adding counts);
- latency: log buckets, 4 per power of two (bucket i holds [2**(i/4), 2**((i+1)/4)) µs), so
  p99 is read back within about ±9 %.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import msgspec

from shadow.envelope import PredictionRecord

SCORE_BINS = 10
LATENCY_STEPS_PER_DOUBLING = 4
LATENCY_BUCKETS = 120  # up to 2**30 µs, about 18 minutes
PSI_FLOOR = 1e-4  # share given to an empty bin, so PSI stays finite

FIGURES = ("count", "error_rate", "nan_rate", "mean_score", "agreement", "psi", "p99_latency_us")


class WindowStats(msgspec.Struct):
    """One candidate's tallies over one window (of one or more partitions)."""

    count: int = 0
    errors: int = 0
    nans: int = 0
    score_sum: float = 0.0
    paired: int = 0
    agree: int = 0
    score_bins: list[int] = msgspec.field(default_factory=lambda: [0] * SCORE_BINS)
    live_bins: list[int] = msgspec.field(default_factory=lambda: [0] * SCORE_BINS)
    latency: dict[int, int] = msgspec.field(default_factory=dict)


_stats_encoder = msgspec.msgpack.Encoder()
_stats_decoder = msgspec.msgpack.Decoder(WindowStats)


def encode_stats(stats: WindowStats) -> bytes:
    """Table value bytes (msgpack): the monitor's own state, never read outside it."""
    return _stats_encoder.encode(stats)


def decode_stats(value: bytes | None) -> WindowStats:
    return _stats_decoder.decode(value) if value else WindowStats()


def window_start(event_time_ms: int, window_ms: int) -> int:
    return event_time_ms - event_time_ms % window_ms


def score_bin(score: float) -> int:
    return min(SCORE_BINS - 1, max(0, int(score * SCORE_BINS)))


def latency_bucket(latency_us: float) -> int:
    if latency_us <= 1.0:
        return 0
    step = int(math.log2(latency_us) * LATENCY_STEPS_PER_DOUBLING)
    return min(LATENCY_BUCKETS - 1, step)


def observe(
    stats: WindowStats,
    score: float | None,
    error: str | None,
    latency_us: float,
    live_score: float,
    threshold: float,
) -> None:
    """Add one candidate answer (and the live score of the same transaction) to the window."""
    stats.count += 1
    if error is not None:
        stats.errors += 1
        return
    if score is None or not math.isfinite(score):
        stats.nans += 1
        return
    stats.score_sum += score
    stats.score_bins[score_bin(score)] += 1
    stats.live_bins[score_bin(live_score)] += 1
    stats.paired += 1
    stats.agree += (score >= threshold) == (live_score >= threshold)
    bucket = latency_bucket(latency_us)
    stats.latency[bucket] = stats.latency.get(bucket, 0) + 1


def fold(
    records: Iterable[PredictionRecord], window_ms: int, threshold: float
) -> dict[tuple[str, int], WindowStats]:
    """A batch of records -> tallies per (candidate model_id, window start in epoch ms)."""
    tallies: dict[tuple[str, int], WindowStats] = {}
    for record in records:
        start = window_start(record.event_time, window_ms)
        for answer in record.candidates:
            stats = tallies.setdefault((answer.model_id, start), WindowStats())
            observe(
                stats, answer.score, answer.error, answer.latency_us, record.live.score, threshold
            )
    return tallies


def merge(into: WindowStats, other: WindowStats) -> WindowStats:
    """Add other's tallies into ``into`` (windows and partitions merge by addition)."""
    into.count += other.count
    into.errors += other.errors
    into.nans += other.nans
    into.score_sum += other.score_sum
    into.paired += other.paired
    into.agree += other.agree
    into.score_bins = [a + b for a, b in zip(into.score_bins, other.score_bins, strict=True)]
    into.live_bins = [a + b for a, b in zip(into.live_bins, other.live_bins, strict=True)]
    for bucket, n in other.latency.items():
        into.latency[bucket] = into.latency.get(bucket, 0) + n
    return into


def psi(expected: list[int], actual: list[int]) -> float | None:
    """Population stability index of actual (candidate) against expected (live) bin counts."""
    total_e, total_a = sum(expected), sum(actual)
    if not total_e or not total_a:
        return None
    value = 0.0
    for e, a in zip(expected, actual, strict=True):
        p = max(e / total_e, PSI_FLOOR)
        q = max(a / total_a, PSI_FLOOR)
        value += (q - p) * math.log(q / p)
    return value


def latency_quantile(buckets: dict[int, int], q: float) -> float | None:
    """The q-quantile of the latency sketch: the geometric middle of its bucket, in µs."""
    total = sum(buckets.values())
    if not total:
        return None
    rank = q * total
    seen = 0
    for bucket in sorted(buckets):
        seen += buckets[bucket]
        if seen >= rank:
            return 2 ** ((bucket + 0.5) / LATENCY_STEPS_PER_DOUBLING)
    return 2 ** ((max(buckets) + 0.5) / LATENCY_STEPS_PER_DOUBLING)


def figures(stats: WindowStats) -> dict[str, float | None]:
    """What the rules judge and /shadow/windows/ shows (None when the window cannot say)."""
    count = stats.count
    return {
        "count": float(count),
        "error_rate": stats.errors / count if count else None,
        "nan_rate": stats.nans / count if count else None,
        "mean_score": stats.score_sum / stats.paired if stats.paired else None,
        "agreement": stats.agree / stats.paired if stats.paired else None,
        "psi": psi(stats.live_bins, stats.score_bins),
        "p99_latency_us": latency_quantile(stats.latency, 0.99),
    }
