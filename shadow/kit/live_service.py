"""SyntheticLiveService - stands in for the live fraud service: generate, score live, offer, label.

Transactions come from ``shadow.kit.synthetic.TransactionGenerator`` at their Poisson arrival times;
each (micro-batch) is scored by the live model - a ``producers.live.LiveModel`` that follows the
registry, or a fixed ONNX file (``FileModel``) - the latency of that call is measured, and every
transaction is offered to the ``ShadowTap`` with the model that scored it, as a real service
would. The
fraud labels of all generated transactions (arriving 1-30 days later) can be written to the
object store's ``labels/`` dataset for the analysis.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from shadow.envelope import LiveScore
from shadow.predictions import LABEL_SCHEMA, labels_key
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
    served: dict[str, int] = field(default_factory=dict)
    """Transactions answered per live model id."""
    first_served_ms: dict[str, int] = field(default_factory=dict)
    """Per live model id, the event time of the first transaction it answered."""
    last_served_ms: dict[str, int] = field(default_factory=dict)
    """Per live model id, the latest event time it answered (request threads overlap a swap:
    the old model may answer a transaction later than the new model's first)."""
    failed: int = 0
    """Transactions answered without a decision (the live model failed on them)."""

    def summary(self) -> dict[str, Any]:
        import numpy as np

        latency = np.asarray(self.live_latency_ms or [0.0])
        return {
            "transactions": self.transactions,
            "frauds": self.frauds,
            "seconds": round(self.seconds, 3),
            "live_latency_ms_p50": round(float(np.percentile(latency, 50)), 4),
            "live_latency_ms_p99": round(float(np.percentile(latency, 99)), 4),
            "served": dict(self.served),
            "failed_requests": self.failed,
            **self.tap,
        }


def live_scorer(model_path: Path, model_id: str, threshold: float) -> Any:
    """An OnnxScorer for the live model, its card read from the file itself."""
    from shadow.modelcard import card_for_file
    from shadow.scorer import OnnxScorer

    return OnnxScorer(card_for_file(model_path, model_id, threshold=threshold), model_path)


class Predictor(Protocol):
    """What the service scores with (producers.live.LiveModel, FileModel)."""

    @property
    def model_id(self) -> str:
        """The model serving now."""
        ...

    def predict_many(self, rows: Sequence[Mapping[str, Any]]) -> list[LiveScore]: ...


class FileModel:
    """A live model read from one ONNX file, outside the registry: it never changes."""

    def __init__(self, model_path: Path, model_id: str, threshold: float) -> None:
        self.scorer = live_scorer(model_path, model_id, threshold)
        self.model_id = model_id

    def predict_many(self, rows: Sequence[Mapping[str, Any]]) -> list[LiveScore]:
        card = self.scorer.card
        batch = self.scorer.score_features(rows)
        latency_ms = batch.seconds * 1000
        return [
            LiveScore(card.model_id, score, card.decision(score), latency_ms)
            for score in batch.scores.tolist()
        ]


class SyntheticLiveService:
    """Generated card traffic, scored by a live model and mirrored through the tap.

    Use a seed other than the one the models were trained with (the reference models use 7),
    or the live model scores its own training rows. ``model`` (e.g. a LiveModel) scores instead
    of the file at ``live_model_path``. ``calendar_ms`` fixes the traffic's calendar (see
    shadow.kit.synthetic.TransactionGenerator) while its event times follow the wall clock.
    """

    def __init__(
        self,
        settings: Settings,
        live_model_path: Path | None,
        live_model_id: str = "",
        seed: int = 101,
        threshold: float = 0.5,
        micro_batch: int = 1,
        tap: Any = None,
        fraud_rate: float = 0.004,
        model: Predictor | None = None,
        calendar_ms: int | None = None,
    ) -> None:
        from shadow.kit.synthetic import TransactionGenerator

        self.settings = settings
        self.seed = seed
        self.micro_batch = max(1, micro_batch)
        if model is None:
            if live_model_path is None:
                raise ValueError("give the live model's file or a model to score with")
            model = FileModel(live_model_path, live_model_id, threshold)
        self.model = model
        self.current = SyntheticRun()
        """The run in progress (or the last one): its counters grow while it serves."""
        self.generator = TransactionGenerator(seed, fraud_rate, calendar_ms)
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
        result = self.current = SyntheticRun()
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
        from shadow.kit.synthetic import feature_dicts

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
            answers = self.model.predict_many(rows[begin:end])
            result.live_latency_ms.append(answers[0].latency_ms)
            for i, live in enumerate(answers, start=begin):
                # the tap mirrors the answer with the id of the model that gave it
                tap.offer(ids[i], rows[i], live, int(times[i]))
                result.transactions += 1
                _count(result, live, int(times[i]))

    @property
    def model_id(self) -> str:
        """The live model's id (the one serving now, for a LiveModel)."""
        return self.model.model_id

    def labels(self) -> Any:
        """Labels of every transaction generated so far, as an Arrow table of LABEL_SCHEMA."""
        import pandas as pd
        import pyarrow as pa

        from shadow.kit.synthetic import labels_of

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


def _count(result: SyntheticRun, live: LiveScore, event_time: int) -> None:
    served = result.served.get(live.model_id, 0)
    if not served:
        result.first_served_ms[live.model_id] = event_time
    last = result.last_served_ms.get(live.model_id, event_time)
    result.last_served_ms[live.model_id] = max(last, event_time)
    result.served[live.model_id] = served + 1
    if live.decision is None:
        result.failed += 1
