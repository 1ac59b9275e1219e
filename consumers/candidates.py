"""CandidateSet - the loaded shadow models: batch scoring, failure counting, hot reload."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from consumers.feature_check import check_features, wanted_types
from shadow.errors import ModelTimeout, ScoringStopped, ShadowError
from shadow.prediction_store import ModelScores
from shadow.scorer import FeatureFrame

if TYPE_CHECKING:
    from consumers.metrics import WorkerMetrics
    from shadow.envelope import Envelope
    from shadow.errors import EnvelopeError

logger = logging.getLogger(__name__)

CANARY_TOLERANCE = 1e-5


class Scorer(Protocol):
    """What the worker needs of a loaded model (shadow.scorer.OnnxScorer is the real one)."""

    model_id: str

    def score(self, envelopes: Sequence[Envelope]) -> Any:
        """A result with ``scores`` (float64, one per envelope) and ``seconds``."""
        ...

    # optional: score_columns(frame: FeatureFrame) -> the same result, from columns the batch
    # gathered once for every model (OnnxScorer has it); used instead of score() when present

    def score_canary(self) -> float: ...


@dataclass
class Candidate:
    """A loaded model and what the worker tracks about it."""

    model_id: str
    scorer: Scorer
    threshold: float
    canary_expected: float
    sha256: str = ""
    failures_in_row: int = 0
    batches: int = 0
    errors: int = 0
    next_probe: float = 0.0
    overran: bool = False
    """Its last failed batch was ended by the watchdog (worker.model_timeout_ms)."""


class ModelSource(Protocol):
    """Where candidates come from: the registry's shadow set (consumers.registry_source)."""

    def shadow_ids(self) -> list[str]: ...
    def load(self, model_id: str) -> Candidate: ...
    def report_failed(self, model_id: str, reason: str) -> None: ...


class CandidateSet:
    """The models in state shadow, scored batch by batch; a model failing N batches in a row
    is unloaded and reported, and stays out until the registry puts it back in shadow."""

    def __init__(
        self,
        source: ModelSource,
        max_failures: int,
        reload_seconds: float,
        metrics: WorkerMetrics | None = None,
        probe_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.probe_seconds = probe_seconds
        self.clock = clock
        self.max_failures = max_failures
        self.reload_seconds = reload_seconds
        self.metrics = metrics
        self._models: dict[str, Candidate] = {}
        self._wanted: dict[str, frozenset[str]] = {}
        self._evicted: set[str] = set()
        self._lock = threading.Lock()
        self._next_reload = 0.0

    def maybe_reload(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if now >= self._next_reload:
            self._next_reload = now + self.reload_seconds
            self.reload()

    def reload(self) -> None:
        """Load models that entered the shadow set, unload those that left it."""
        try:
            wanted = set(self.source.shadow_ids())
        except ShadowError as exc:
            logger.warning("cannot read the shadow set, keeping %d models: %s", len(self), exc)
            return
        self._evicted &= wanted
        for model_id in sorted(set(self._models) - wanted):
            self._unload(model_id, "left the shadow set")
        for model_id in sorted(wanted - set(self._models) - self._evicted):
            self._load(model_id)

    def _load(self, model_id: str) -> None:
        try:
            candidate = self.source.load(model_id)
        except ShadowError as exc:
            logger.error("model %s not loaded: %s", model_id, exc)
            return
        with self._lock:
            self._models[model_id] = candidate
        if self.metrics is not None:
            self.metrics.track_model(model_id)
        self._loaded_changed()
        logger.info("model %s loaded (threshold %.4f)", model_id, candidate.threshold)

    def _unload(self, model_id: str, why: str) -> None:
        with self._lock:
            self._models.pop(model_id, None)
        self._loaded_changed()
        logger.info("model %s unloaded: %s", model_id, why)

    def _loaded_changed(self) -> None:
        cards = [getattr(c.scorer, "card", None) for c in self.loaded()]
        self._wanted = wanted_types([card.features for card in cards if card is not None])
        if self.metrics is not None:
            self.metrics.models_loaded.set(len(self._models))

    def check(self, frame: FeatureFrame) -> dict[int, EnvelopeError]:
        """The rows of a batch holding a feature a loaded model cannot take (feature_type)."""
        return check_features(frame, self._wanted)

    def score(
        self, envelopes: Sequence[Envelope], frame: FeatureFrame | None = None
    ) -> list[ModelScores]:
        """Every loaded model's scores for the batch; a failing model gets an error instead.

        The batch's feature columns are gathered once (``frame``, if given, holds them
        already) and shared by every model."""
        frame = frame if frame is not None else FeatureFrame.of(envelopes)
        results = [self._score_one(c, envelopes, frame) for c in list(self._models.values())]
        for candidate in [c for c in self._models.values() if c.failures_in_row]:
            if candidate.failures_in_row >= self.max_failures:
                self._evict(candidate)
        return results

    def _score_one(
        self, candidate: Candidate, envelopes: Sequence[Envelope], frame: FeatureFrame
    ) -> ModelScores:
        n = len(envelopes)
        start = time.perf_counter()
        by_columns = getattr(candidate.scorer, "score_columns", None)
        try:
            answer = by_columns(frame) if by_columns else candidate.scorer.score(envelopes)
            scores = _checked(answer.scores, n)
        except ScoringStopped:
            raise  # shutting down: not the model's failure, the batch is left for replay
        except Exception as exc:  # noqa: BLE001 - one model's failure must not stop the others
            return self._failed(candidate, exc, time.perf_counter() - start)
        seconds = time.perf_counter() - start
        candidate.failures_in_row = 0
        candidate.batches += 1
        if self.metrics is not None:
            self.metrics.scored(candidate.model_id, n, seconds)
        probe = self._probe(candidate, envelopes[0]) if n else None
        return ModelScores(
            candidate.model_id, candidate.threshold, scores, seconds / n * 1e6, None, probe
        )

    def _probe(self, candidate: Candidate, envelope: Envelope) -> float | None:
        """A single-request probe at most every probe_seconds per model: probing every chunk
        cut the worker bench's rate by about a quarter, more than the 1-row calls themselves
        take (onnxruntime switching between a 1-row and a batch shape is the likely cause)."""
        now = self.clock()
        if not self.probe_seconds or now < candidate.next_probe:
            return None
        candidate.next_probe = now + self.probe_seconds
        return _single_request_us(candidate.scorer, envelope)

    def _failed(self, candidate: Candidate, exc: Exception, seconds: float) -> ModelScores:
        candidate.failures_in_row += 1
        candidate.errors += 1
        error = str(exc) if isinstance(exc, ShadowError) else f"{type(exc).__name__}: {exc}"
        logger.warning(
            "model %s failed a batch (%d in a row): %s",
            candidate.model_id,
            candidate.failures_in_row,
            error[:200],
        )
        candidate.overran = isinstance(exc, ModelTimeout)
        if self.metrics is not None:
            self.metrics.model_errors.labels(candidate.model_id).inc()
            if isinstance(exc, ModelTimeout):
                self.metrics.model_timeouts.labels(candidate.model_id).inc()
        return ModelScores(candidate.model_id, candidate.threshold, None, 0.0, error[:500])

    def _evict(self, candidate: Candidate) -> None:
        reason = f"failed {candidate.failures_in_row} batches in a row"
        if candidate.overran:
            reason += ", the last one overran worker.model_timeout_ms"
        self._evicted.add(candidate.model_id)
        self._unload(candidate.model_id, reason)
        try:
            self.source.report_failed(candidate.model_id, reason)
        except ShadowError as exc:
            logger.error("model %s: the registry did not record the failure: %s", candidate, exc)

    def health(self) -> dict[str, dict[str, Any]]:
        """Per loaded model: its canary score, the expected one, and whether they agree."""
        report = {}
        for candidate in self.loaded():
            try:
                got = float(candidate.scorer.score_canary())
            except Exception as exc:  # noqa: BLE001 - a health check reports, never raises
                report[candidate.model_id] = {"ok": False, "error": str(exc)[:200]}
                continue
            ok = math.isclose(got, candidate.canary_expected, rel_tol=0, abs_tol=CANARY_TOLERANCE)
            report[candidate.model_id] = {
                "ok": ok,
                "canary": got,
                "expected": candidate.canary_expected,
            }
        return report

    def report(self) -> list[dict[str, Any]]:
        """The loaded set, for /models."""
        return [
            {
                "model_id": c.model_id,
                "sha256": c.sha256,
                "threshold": c.threshold,
                "batches": c.batches,
                "errors": c.errors,
                "failures_in_row": c.failures_in_row,
            }
            for c in self.loaded()
        ]

    def loaded(self) -> list[Candidate]:
        with self._lock:
            return list(self._models.values())

    def __len__(self) -> int:
        return len(self._models)


def _single_request_us(scorer: Scorer, envelope: Envelope) -> float | None:
    """How long scoring this one transaction alone takes (features + inference), in us: the
    single-request latency a live service would see, which a batch's cost per row is not.
    None when the model fails on it (the batch's own scores already went through)."""
    by_columns = getattr(scorer, "score_columns", None)
    start = time.perf_counter()
    try:
        if by_columns:
            by_columns(FeatureFrame.of([envelope]))
        else:
            scorer.score([envelope])
    except Exception:  # noqa: BLE001 - a failed probe only loses the probe
        return None
    return (time.perf_counter() - start) * 1e6


def _checked(scores: Any, n: int) -> np.ndarray:
    """The scores as float64 (n,), or ValueError when the model returned garbage: the wrong
    count, nothing finite, or finite scores outside [0, 1]. Some non-finite scores (a gap in
    one transaction's inputs) stay: those rows become error rows, not the whole batch."""
    values = np.asarray(scores, dtype=np.float64).reshape(-1)
    if values.shape != (n,):
        raise ValueError(f"returned {values.size} scores for {n} transactions")
    finite = values[np.isfinite(values)]
    if values.size and not finite.size:
        raise ValueError("returned non-finite scores")
    if finite.size and (finite.min() < 0.0 or finite.max() > 1.0):
        raise ValueError("returned scores outside [0, 1]")
    return values
