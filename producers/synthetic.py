"""SyntheticLiveService - stands in for the live fraud service: generate, score live, offer, label.

Transactions come from ``shadow.synthetic.TransactionGenerator`` at their Poisson arrival times;
each (micro-batch) is scored by the live ONNX model in ONNX Runtime, the latency of that call is
measured, and every transaction is offered to the ``ShadowTap`` as a real service would. The
fraud labels of all generated transactions (arriving 1-30 days later) can be written to the
object store's ``labels/`` dataset for the analysis.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shadow.envelope import LiveScore
from shadow.predictions import DECISION_ALERT, DECISION_PASS, LABEL_SCHEMA, labels_key
from shadow.settings import Settings

logger = logging.getLogger(__name__)

CHUNK_SECONDS = 1.0
"""Transactions are generated one second of traffic at a time."""


@dataclass
class SyntheticRun:
    """What one run did: transactions, frauds, the live model's latency and the tap counters."""

    transactions: int = 0
    frauds: int = 0
    seconds: float = 0.0
    live_latency_ms: list[float] = field(default_factory=list, repr=False)
    tap: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        import numpy as np

        latency = np.asarray(self.live_latency_ms or [0.0])
        return {
            "transactions": self.transactions,
            "frauds": self.frauds,
            "seconds": round(self.seconds, 3),
            "live_latency_ms_p50": round(float(np.percentile(latency, 50)), 4),
            "live_latency_ms_p99": round(float(np.percentile(latency, 99)), 4),
            **self.tap,
        }


def live_scorer(model_path: Path, model_id: str, threshold: float) -> Any:
    """An OnnxScorer for the live model, its card read from the file itself."""
    from shadow.modelcard import card_for_file
    from shadow.scorer import OnnxScorer

    return OnnxScorer(card_for_file(model_path, model_id, threshold=threshold), model_path)


class SyntheticLiveService:
    """Generated card traffic, scored by a live model and mirrored through the tap.

    Use a seed other than the one the models were trained with (the reference models use 7),
    or the live model scores its own training rows.
    """

    def __init__(
        self,
        settings: Settings,
        live_model_path: Path,
        live_model_id: str,
        seed: int = 101,
        threshold: float = 0.5,
        micro_batch: int = 1,
        tap: Any = None,
        fraud_rate: float = 0.004,
    ) -> None:
        from shadow.synthetic import TransactionGenerator

        self.settings = settings
        self.model_id = live_model_id
        self.seed = seed
        self.threshold = threshold
        self.micro_batch = max(1, micro_batch)
        self.scorer = live_scorer(live_model_path, live_model_id, threshold)
        self.generator = TransactionGenerator(seed, fraud_rate)
        self._tap = tap
        self._frames: list[Any] = []

    def run(
        self,
        tps: float,
        seconds: float,
        progress: Callable[[int, int], None] | None = None,
        start_ms: int | None = None,
    ) -> SyntheticRun:
        """Serve tps transactions a second for `seconds`, paced to their arrival times."""
        from producers.tap import open_tap

        total = max(1, round(tps * seconds))
        tap = self._tap or open_tap(self.settings)
        result = SyntheticRun()
        started = time.monotonic()
        first_ms = start_ms if start_ms is not None else time.time_ns() // 1_000_000
        try:
            while result.transactions < total:
                n = min(total - result.transactions, max(1, round(tps * CHUNK_SECONDS)))
                begin = first_ms if result.transactions == 0 else None
                frame = self.generator.batch(n, begin, tps)
                self._frames.append(frame[["txn_id", "event_time", "label", "amount"]])
                self._serve(frame, tap, result, first_ms, started)
                if progress:
                    progress(result.transactions, total)
        finally:
            if self._tap is None:
                tap.close(30)
        result.seconds = time.monotonic() - started
        result.tap = tap.stats()
        return result

    def _serve(self, frame: Any, tap: Any, result: SyntheticRun, first_ms: int, t0: float) -> None:
        from shadow.synthetic import feature_dicts

        rows = feature_dicts(frame)
        ids = frame["txn_id"].tolist()
        times = frame["event_time"].tolist()
        result.frauds += int(frame["label"].sum())
        for begin in range(0, len(rows), self.micro_batch):
            end = min(begin + self.micro_batch, len(rows))
            # a micro-batch is scored once its last transaction has arrived
            wait = (times[end - 1] - first_ms) / 1000 - (time.monotonic() - t0)
            if wait > 0:
                time.sleep(wait)
            batch = self.scorer.score_features(rows[begin:end])
            latency_ms = batch.seconds * 1000
            result.live_latency_ms.append(latency_ms)
            for i, score in enumerate(batch.scores.tolist(), start=begin):
                decision = DECISION_ALERT if score >= self.threshold else DECISION_PASS
                live = LiveScore(self.model_id, score, decision, latency_ms)
                tap.offer(ids[i], rows[i], live, int(times[i]))
                result.transactions += 1

    def labels(self) -> Any:
        """Labels of every transaction generated so far, as an Arrow table of LABEL_SCHEMA."""
        import pandas as pd
        import pyarrow as pa

        from shadow.synthetic import labels_of

        frame = pd.concat(self._frames, ignore_index=True)
        return pa.Table.from_pandas(labels_of(frame, self.seed), LABEL_SCHEMA, preserve_index=False)

    def write_labels(self, store: Any, name: str | None = None) -> str:
        """Write the labels as one Parquet object (whole or nothing); returns its key."""
        import pyarrow.parquet as pq

        from shadow.predictions import partition_date

        table = self.labels()
        first_ms = int(self._frames[0]["event_time"].iloc[0])
        key = labels_key(name or f"synthetic-{self.seed}-{first_ms}", partition_date(first_ms))
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        store.put(key, buffer.getvalue())
        logger.info("wrote %d labels to %s", table.num_rows, key)
        return key
