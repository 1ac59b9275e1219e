"""Comparison - pair each candidate with the live model over a window and measure everything.

DuckDB builds one paired row per sampled transaction (dedupe included) and aggregates latency and
hours; the compact score arrays then go to numpy/scipy/scikit-learn-checked metrics.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from analysis import paired as pw
from analysis.labelled import LabelledWindow
from analysis.metrics import Sorted, agreement, distribution
from analysis.segments import segment_metrics
from shadow.dataset import connect
from shadow.settings import AnalysisSettings

if TYPE_CHECKING:
    from shadow.objectstore import ObjectStore

logger = logging.getLogger(__name__)

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

    def run(self) -> dict[str, Any]:
        """The evidence body: inputs, counts and every metric per candidate (see evidence.py)."""
        con = connect()
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
        if paired.transactions == 0:
            return result
        self.progress("aggregating coverage, latency and hours")
        segments = paired.segments
        result["segment_features"] = segments
        counts = pw.coverage(paired)
        latency = pw.latency(paired)
        hours = pw.hourly(paired, self.live_threshold, self.settings.min_segment_rows)
        result["live_latency_ms"] = latency["l_live"]
        data = self._arrays(paired, paired.has_labels, segments)
        live = data["s_live"]
        result["labelled_transactions"] = int(np.sum(np.isfinite(data.get("label", live[:0]))))
        for i, model in enumerate(paired.candidates):
            self.progress(f"comparing {model}")
            entry = {**counts[i], "latency_ms": latency[f"l_{i}"], "hours": hours[i]}
            entry.update(self._candidate(i, data, segments))
            result["candidates"][model] = entry
        return result

    def _arrays(self, paired: pw.PairedWindow, has_labels: bool, segments: list[str]):
        names = ["s_live"] + [f"s_{i}" for i in range(len(paired.candidates))]
        if has_labels:
            names += ["label", "amount"]
        names += [f"seg_{i}" for i in range(len(segments))]
        return paired.columns(names)

    def _candidate(self, i: int, data: dict, segments: list[str]) -> dict[str, Any]:
        live, cand = data["s_live"], data[f"s_{i}"]
        both = np.isfinite(live) & np.isfinite(cand)
        entry: dict[str, Any] = {}
        if not both.any():
            return entry
        live_sorted, cand_sorted = self._sorted("live", live, both), Sorted(cand[both])
        entry["distribution"] = distribution(live_sorted, cand_sorted)
        entry["agreement"] = agreement(live_sorted, cand_sorted, self.live_threshold)
        entry["labelled"] = self._labelled(data, live, cand, both, i)
        entry["segments"] = {
            feature: segment_metrics(
                data[f"seg_{k}"][both],
                live_sorted,
                cand_sorted,
                self._labels(data, both),
                self.live_threshold,
                self.settings.min_segment_rows,
            )
            for k, feature in enumerate(segments)
        }
        return entry

    def _sorted(self, key: str, values: np.ndarray, mask: np.ndarray) -> Sorted:
        """The live scores sorted once per distinct pairing mask (usually once per run)."""
        cache = self.__dict__.setdefault("_sorted_cache", {})
        token = (key, _mask_key(mask))
        if token not in cache:
            cache[token] = Sorted(values[mask])
        return cache[token]

    @staticmethod
    def _labels(data: dict, mask: np.ndarray) -> np.ndarray | None:
        return data["label"][mask] if "label" in data else None

    def _labelled(self, data, live, cand, both, i: int) -> dict[str, Any] | None:
        if "label" not in data:
            return None
        mask = both & np.isfinite(data["label"])
        if mask.sum() == 0:
            return None
        labels = data["label"][mask].astype(np.int8)
        rate = float(np.mean(live[mask] >= self.live_threshold))
        window = self._labelled_window(mask, labels, data["amount"][mask], rate)
        metrics = window.compare(("live", live[mask]), (f"c{i}", cand[mask]))
        return {"transactions": int(mask.sum()), "live_alert_rate": rate, "metrics": metrics}

    def _labelled_window(self, mask, labels, amounts, rate) -> LabelledWindow:
        cache = self.__dict__.setdefault("_labelled_cache", {})
        token = _mask_key(mask)
        if token not in cache:
            s = self.settings
            cache[token] = LabelledWindow(
                labels,
                amounts,
                rate,
                samples=s.bootstrap_samples,
                rows=s.bootstrap_rows,
                seed=s.seed,
            )
        return cache[token]


def _mask_key(mask: np.ndarray) -> str:
    import hashlib

    return hashlib.blake2b(np.packbits(mask).tobytes(), digest_size=16).hexdigest()
