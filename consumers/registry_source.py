"""RegistryModels - the worker's candidates from the registry: shadow set, verified fetch, load."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from consumers.candidates import Candidate, CandidateSet
from shadow.errors import ModelError

if TYPE_CHECKING:
    from consumers.metrics import WorkerMetrics
    from shadow.modelcard import ModelCard
    from shadow.registry import ModelRegistry
    from shadow.settings import Settings

logger = logging.getLogger(__name__)


class RegistryModels:
    """Reads the registry's shadow set; loads a model from a sha256-verified local copy."""

    def __init__(self, settings: Settings, actor: str = "shadow-worker") -> None:
        self.settings = settings
        self.actor = actor
        self._registry: ModelRegistry | None = None
        self._cards: dict[str, ModelCard] = {}

    @property
    def registry(self) -> ModelRegistry:
        if self._registry is None:
            from shadow.registry import ModelRegistry

            self._registry = ModelRegistry.from_settings(self.settings)
        return self._registry

    def shadow_ids(self) -> list[str]:
        cards = self.registry.shadow_set()
        self._cards = {card.model_id: card for card in cards}
        return list(self._cards)

    def load(self, model_id: str) -> Candidate:
        from shadow.scorer import OnnxScorer

        card = self._cards.get(model_id) or self.registry.get(model_id).card
        if card.canary_score is None:
            raise ModelError(model_id, "the card has no canary score to check health against")
        path = self.registry.fetch(model_id, self.settings.registry.model_cache)
        # OnnxScorer checks the sha256 of the very bytes it builds the session from
        worker = self.settings.worker
        scorer = OnnxScorer(card, path, worker.intra_op_threads, worker.model_timeout_ms / 1000)
        return Candidate(model_id, scorer, card.threshold, card.canary_score, card.sha256)

    def report_failed(self, model_id: str, reason: str) -> None:
        """An event in the model's history (its state is the gate's decision, not ours)."""
        self.registry.record_event(model_id, self.actor, f"unloaded by a worker: {reason}")


def registry_candidates(settings: Settings, metrics: WorkerMetrics | None = None) -> CandidateSet:
    """The worker's candidate set, fed by the registry's shadow set."""
    worker = settings.worker
    return CandidateSet(
        RegistryModels(settings),
        worker.max_model_failures,
        worker.reload_seconds,
        metrics,
        worker.probe_seconds,
    )
