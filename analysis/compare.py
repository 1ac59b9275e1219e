"""Comparison - pair each candidate with the live model over a window and measure everything.

DuckDB builds one paired row per sampled transaction (dedupe included) and aggregates coverage
and time bins; the compact score arrays then go to numpy/scipy/scikit-learn-checked metrics, on
two threads (numpy's sorts and scans release the GIL).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from analysis import aggregates, inputs
from analysis import paired as pw
from analysis.labelled import LabelledWindow
from analysis.metrics import Sorted, agreement, distribution
from analysis.segments import live_segments, segment_metrics
from shadow.dataset import connect, window_sql
from shadow.predictions import ROLE_LIVE
from shadow.settings import AnalysisSettings

if TYPE_CHECKING:
    from shadow.objectstore import ObjectStore

logger = logging.getLogger(__name__)

THREADS = 2
TRUTH_COLUMNS = ("label", "amount", "keys")

Progress = Callable[[str], None]


@dataclass
class Comparison:
    """Candidates against the live model on the same transactions of [start, end)."""

    store: ObjectStore
    start: dt.datetime | None
    end: dt.datetime | None
    candidates: list[str] | None = None
    settings: AnalysisSettings = field(default_factory=AnalysisSettings)
    live_threshold: float = 0.5
    threshold_source: str = "default"
    progress: Progress = field(default=lambda step: None)
    resolve_threshold: Callable[[list[str]], tuple[float, str]] | None = None
    """Called with the live model ids found in the window (e.g. to read the card threshold)."""
    skip_corrupt: bool = False
    """Leave out objects that are not readable Parquet (counted in the evidence) instead of
    stopping at the first."""
    _cache: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def run(self) -> dict[str, Any]:
        """The evidence body: inputs, counts and every metric per candidate (see evidence.py).
        UsageError when the store, the window or a named candidate holds nothing to compare,
        or an object is not readable Parquet (analysis.inputs)."""
        import duckdb
        import pyarrow as pa

        inputs.check_store(self.store)
        try:
            return self._run(frozenset())
        except (duckdb.Error, pa.ArrowException, OSError):
            bad = inputs.corrupt_objects(self.store, self.start, self.end)
            if not bad:
                raise
            if not self.skip_corrupt:
                raise inputs.CorruptObject(*bad[0], more=len(bad) - 1) from None
        for key, problem in bad:
            logger.warning("left out %s: not readable Parquet (%s)", key, problem)
        result = self._run(frozenset(key for key, _ in bad))
        result["skipped_objects"] = [{"key": key, "problem": problem} for key, problem in bad]
        return result

    def _run(self, skip: frozenset[str]) -> dict[str, Any]:
        con = connect()
        self._cache.clear()  # sorts and bootstrap windows belong to one run's data
        self.progress("reading and pairing predictions")
        window = (self.start, self.end)
        segments = list(self.settings.segment_features)
        paired = pw.build(con, self.store, window, self.candidates, segments, skip)
        self._check(con, paired)
        if self.resolve_threshold is not None:
            self.live_threshold, self.threshold_source = self.resolve_threshold(paired.live_models)
        logger.info(
            "window %s..%s: %d sampled transactions, candidates %s",
            self.start,
            self.end,
            paired.transactions,
            paired.candidates,
        )
        result: dict[str, Any] = {
            "live_models": paired.live_models,
            "live_threshold": self.live_threshold,
            "live_threshold_source": self.threshold_source,
            "transactions": paired.transactions,
            "labelled_transactions": 0,
            "segment_features": [],
            "candidates": {},
        }
        self._measure(paired, result)
        return result

    def _check(self, con: Any, paired: pw.PairedWindow) -> None:
        """A window without predictions, or a named candidate without rows in it: UsageError."""
        if paired.transactions == 0:
            raise inputs.empty_window(self.store, self.start, self.end)
        if self.candidates:
            seen = paired.columns
            missing = [c for i, c in enumerate(paired.candidates) if not seen[f"seen_{i}"].any()]
            if missing:
                where, params = window_sql(self.start, self.end)
                found = pw.models_in_window(con, where, params)
                others = sorted(m for m, role in found if role != ROLE_LIVE)
                raise inputs.unknown_candidates(missing, others)

    def _measure(self, paired: pw.PairedWindow, result: dict[str, Any]) -> None:
        """Fill `result` for a window with transactions. numpy's sorts and scans release the
        GIL, so two pool threads do the numpy work: the sorts start on the scores alone while
        DuckDB joins segments and labels, and this thread then computes coverage and time bins.
        The work is cut in small tasks (live's ranks, each sort, the live side shared by the
        candidates, then each candidate's scores, labelled figures and segments) so both
        threads stay busy to the end; the pool is FIFO and a task only waits for tasks
        submitted before it."""
        self.progress("aggregating coverage, latency and time bins")
        result["segment_features"] = paired.segments
        count = len(paired.candidates)
        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            ranked = pool.submit(self._live_ranked, paired.columns, 0) if count else None
            ahead = [pool.submit(_paired_sorted, paired.columns, i) for i in range(count)]
            data = paired.arrays()  # segment codes and labels join meanwhile
            if paired.has_labels:
                result["labelled_transactions"] = int(np.sum(np.isfinite(data["label"])))
            parts, latency = self._submit(pool, data, paired, ranked, ahead)
            counts = aggregates.coverage(paired)
            requests = aggregates.request_latency(paired)
            times = aggregates.timeline(paired, self.live_threshold, self.settings.min_segment_rows)
            self.progress(f"comparing {count} candidate(s)")
            latencies = latency.result()
        result["live_latency_ms"] = latencies["l_live"]
        for i, name in enumerate(paired.candidates):
            entry = {**counts[i], "latency_ms": latencies[f"l_{i}"], "timeline": times[i]}
            entry["request_latency_ms"] = requests.get(name)
            for part in parts[i]:
                entry.update(part.result())
            result["candidates"][name] = entry

    def _submit(
        self,
        pool: ThreadPoolExecutor,
        data: dict,
        paired: pw.PairedWindow,
        ranked: Future | None,
        ahead: list[Future],
    ) -> tuple[list[list[Future]], Future]:
        """Queue the work after the sorts: live's shared side, latencies, then per candidate
        its scores, labelled figures and segments."""
        segments = {f: data[f"seg_{k}"] for k, f in enumerate(paired.segments)}
        columns = ["l_live"] + [f"l_{i}" for i in range(len(paired.candidates))]
        if ranked is None:  # no candidates: latencies only
            return [], pool.submit(aggregates.latency, data, columns)
        count = len(paired.candidates)
        if count:
            shared = pool.submit(self._live_side, data, 0, segments, ranked)
        latency = pool.submit(aggregates.latency, data, columns)
        parts: list[list[Future]] = [[] for _ in range(count)]
        for i in range(count):
            parts[i].append(pool.submit(self._scored, data, ahead[i], ranked))
        for i in range(count):
            parts[i].append(pool.submit(self._truth, data, i, ahead[i], shared))
        for i in range(count):
            parts[i].append(pool.submit(self._sliced, data, segments, ahead[i], shared))
        return parts, latency

    def _pairing(self, data: dict, ahead: Future, wait: Future) -> tuple | None:
        """Candidate's pairing mask, live's and its sorted scores on it (None: no pairs), once
        `wait` (the task making what live shares) is done, so nothing is made twice."""
        wait.result()
        both, cand_sorted = ahead.result()
        if cand_sorted is None:
            return None
        return both, self._live_sorted(data["s_live"], both), cand_sorted

    def _scored(self, data: dict, ahead: Future, ranked: Future) -> dict[str, Any]:
        """Score distribution and agreement of a candidate."""
        pairing = self._pairing(data, ahead, ranked)
        if pairing is None:
            return {}
        _, live, cand = pairing
        return {
            "distribution": distribution(live, cand),
            "agreement": agreement(live, cand, self.live_threshold),
        }

    def _truth(self, data: dict, i: int, ahead: Future, shared: Future) -> dict[str, Any]:
        """Labelled figures of candidate i (None without labels)."""
        pairing = self._pairing(data, ahead, shared)
        if pairing is None:
            return {}
        both, live, cand = pairing
        pick = _picker(both)
        truth = tuple(pick(data[c]) if c in data else None for c in TRUTH_COLUMNS)
        return {"labelled": self._labelled(live, cand, truth, f"c{i}", _mask_key(both))}

    def _sliced(self, data: dict, segments: dict, ahead: Future, shared: Future) -> dict:
        """Per-segment figures of a candidate."""
        pairing = self._pairing(data, ahead, shared)
        if pairing is None:
            return {}
        both, live, cand = pairing
        pick = _picker(both)
        labels = pick(data["label"]) if "label" in data else None
        cache = self._cache.setdefault("segments", {})
        threshold, min_rows = self.live_threshold, self.settings.min_segment_rows
        return {
            "segments": {
                feature: segment_metrics(
                    pick(codes), names, live, cand, labels, threshold, min_rows, cache
                )
                for feature, (codes, names) in segments.items()
            }
        }

    def _live_ranked(self, data: dict, i: int) -> None:
        """Live's scores on candidate i's pairing, sorted and ranked once for every candidate
        paired on the same rows."""
        both = np.isfinite(data["s_live"]) & np.isfinite(data[f"s_{i}"])
        if both.any():
            _ = self._live_sorted(data["s_live"], both).ranks

    def _live_side(self, data: dict, i: int, segments: dict, ranked: Future) -> None:
        """The rest of the live side of candidate i's pairing, made ahead for every candidate
        paired on the same rows: live's segment grouping, the bootstrap window and live's
        labelled figures (`ranked`: the task sorting live's scores)."""
        ranked.result()
        both = np.isfinite(data["s_live"]) & np.isfinite(data[f"s_{i}"])
        if not both.any():
            return
        pick = _picker(both)
        live = self._live_sorted(data["s_live"], both)
        for codes, names in segments.values():
            live_segments(self._cache.setdefault("segments", {}), live, pick(codes), names)
        if "label" in data:
            truth = tuple(pick(data[c]) for c in TRUTH_COLUMNS)
            self._labelled(live, live, truth, "live", _mask_key(both))

    def _live_sorted(self, live: np.ndarray, mask: np.ndarray) -> Sorted:
        """The live scores sorted once per distinct pairing mask (usually once per run)."""
        key = _mask_key(mask)
        if key not in self._cache:
            self._cache[key] = Sorted(live if mask.all() else live[mask])
        return self._cache[key]

    def _labelled(
        self, live: Sorted, cand: Sorted, truth: tuple, name: str, pairing: str
    ) -> dict | None:
        """Labelled metrics on the labelled pairs; the window-wide orders are reused when every
        pair is labelled (the usual case once labels have arrived). `pairing` identifies the
        paired rows: candidates paired on the same rows share one bootstrap window."""
        labels, amounts, keys = truth
        if labels is None:
            return None
        known = np.isfinite(labels)
        if not known.any():
            return None
        rate = float(np.mean(live.values[known] >= self.live_threshold))
        key = f"labelled-{pairing}-{_mask_key(known)}"
        if key not in self._cache:
            s = self.settings
            self._cache[key] = LabelledWindow(
                labels[known].astype(np.int8),
                amounts[known],
                rate,
                samples=s.bootstrap_samples,
                rows=s.bootstrap_rows,
                seed=s.seed,
                keys=None if keys is None else keys[known],
                threshold=self.live_threshold,
            )
        window: LabelledWindow = self._cache[key]
        pair_live: tuple
        pair_cand: tuple
        if known.all():
            pair_live, pair_cand = (
                ("live", live.values, live.order, live.sorted),
                (name, cand.values, cand.order, cand.sorted),
            )
        else:
            pair_live, pair_cand = ("live", live.values[known]), (name, cand.values[known])
        metrics = window.compare(pair_live, pair_cand)
        count, positives = int(known.sum()), window.positives
        return {
            "transactions": count,
            "positives": positives,
            "negatives": count - positives,
            "live_alert_rate": rate,
            "metrics": metrics,
            "curves": {"live": window.curves["live"], "candidate": window.curves[name]},
        }


def _picker(both: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Selects the paired rows of a column; every row is paired in the usual case: no copy."""
    if both.all():
        return lambda values: values
    return lambda values: values[both]


def _paired_sorted(data: dict, i: int) -> tuple[np.ndarray, Sorted | None]:
    """Candidate i's pairing mask (both scores present) and its paired scores, sorted."""
    both = np.isfinite(data["s_live"]) & np.isfinite(data[f"s_{i}"])
    if not both.any():
        return both, None
    cand = data[f"s_{i}"]
    return both, Sorted(cand if both.all() else cand[both])


def _mask_key(mask: np.ndarray) -> str:
    import hashlib

    return hashlib.blake2b(np.packbits(mask).tobytes(), digest_size=16).hexdigest()
