"""Comparison - pair each candidate with the live model over a window and measure everything.

DuckDB builds one paired row per sampled transaction (dedupe included) and aggregates coverage
and hours; the compact score arrays then go to numpy/scipy/scikit-learn-checked metrics, on two
threads (numpy's sorts and scans release the GIL).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from analysis import aggregates
from analysis import paired as pw
from analysis.labelled import LabelledWindow
from analysis.metrics import Sorted, agreement, distribution
from analysis.segments import live_segments, segment_metrics
from shadow.dataset import connect
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
    _cache: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def run(self) -> dict[str, Any]:
        """The evidence body: inputs, counts and every metric per candidate (see evidence.py)."""
        con = connect()
        self._cache.clear()  # sorts and bootstrap windows belong to one run's data
        self.progress("reading and pairing predictions")
        paired = pw.build(
            con,
            self.store,
            (self.start, self.end),
            self.candidates,
            list(self.settings.segment_features),
        )
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
        if paired.transactions > 0:
            self._measure(paired, result)
        return result

    def _measure(self, paired: pw.PairedWindow, result: dict[str, Any]) -> None:
        """Fill `result` for a window with transactions. numpy's sorts and scans release the
        GIL, so two pool threads do the numpy work while this thread asks DuckDB (which has
        its own threads) for coverage and hours. The live side shared by the candidates and
        every candidate's sort are made first, as separate tasks, then the candidates."""
        self.progress("aggregating coverage, latency and hours")
        result["segment_features"] = paired.segments
        data = paired.arrays()
        columns = ["l_live"] + [f"l_{i}" for i in range(len(paired.candidates))]
        segments = {f: data[f"seg_{k}"] for k, f in enumerate(paired.segments)}
        if paired.has_labels:
            result["labelled_transactions"] = int(np.sum(np.isfinite(data["label"])))
        count = len(paired.candidates)
        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            # FIFO: every task a candidate waits for is submitted (and started) before it
            live = pool.submit(self._live_side, data, 0, segments) if count else None
            ahead = {i: pool.submit(_paired_sorted, data, i) for i in range(count)}
            latency = pool.submit(aggregates.latency, data, columns)
            measured = pool.map(
                lambda i: self._candidate(data, i, segments, ahead[i], live), range(count)
            )
            counts = aggregates.coverage(paired)
            hours = aggregates.hourly(paired, self.live_threshold, self.settings.min_segment_rows)
            self.progress(f"comparing {count} candidate(s)")
            measured, latencies = list(measured), latency.result()
        result["live_latency_ms"] = latencies["l_live"]
        for i, metrics in enumerate(measured):
            entry = {**counts[i], "latency_ms": latencies[f"l_{i}"], "hours": hours[i], **metrics}
            result["candidates"][paired.candidates[i]] = entry

    def _candidate(
        self,
        data: dict,
        i: int,
        segments: dict,
        ahead: Future | None = None,
        live_side: Future | None = None,
    ) -> dict[str, Any]:
        """Every paired metric of candidate i (`ahead`: its scores sorted by another task,
        `live_side`: the task making the live side, waited for so it is not made twice)."""
        if live_side is not None:
            live_side.result()
        both, cand_sorted = _paired_sorted(data, i) if ahead is None else ahead.result()
        if cand_sorted is None:
            return {}
        pick = _picker(both)
        live_sorted = self._live_sorted(data["s_live"], both)
        labels, amounts, keys = (pick(data[c]) if c in data else None for c in TRUTH_COLUMNS)
        return {
            "distribution": distribution(live_sorted, cand_sorted),
            "agreement": agreement(live_sorted, cand_sorted, self.live_threshold),
            "labelled": self._labelled(
                live_sorted, cand_sorted, (labels, amounts, keys), f"c{i}", _mask_key(both)
            ),
            "segments": {
                feature: segment_metrics(
                    pick(codes),
                    names,
                    live_sorted,
                    cand_sorted,
                    labels,
                    self.live_threshold,
                    self.settings.min_segment_rows,
                    self._cache.setdefault("segments", {}),
                )
                for feature, (codes, names) in segments.items()
            },
        }

    def _live_side(self, data: dict, i: int, segments: dict) -> None:
        """The live side of candidate i's pairing, made ahead for every candidate paired on
        the same rows: live's sort and ranks, its segment grouping, the bootstrap window and
        live's labelled figures."""
        both = np.isfinite(data["s_live"]) & np.isfinite(data[f"s_{i}"])
        if not both.any():
            return
        pick = _picker(both)
        live = self._live_sorted(data["s_live"], both)
        _ = live.ranks
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
            )
        window: LabelledWindow = self._cache[key]
        if known.all():
            pair_live, pair_cand = (
                ("live", live.values, live.order, live.sorted),
                (name, cand.values, cand.order, cand.sorted),
            )
        else:
            pair_live, pair_cand = ("live", live.values[known]), (name, cand.values[known])
        metrics = window.compare(pair_live, pair_cand)
        return {"transactions": int(known.sum()), "live_alert_rate": rate, "metrics": metrics}


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
