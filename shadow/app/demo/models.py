"""Demo models - build the reference models, register the live one and three candidates."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shadow.registry import ModelRegistry

NAME = "fraud"
LIVE = "baseline"
CANDIDATES = ("lr", "gbdt", "degraded")
ACTOR = "shadow-demo"
ALERT_RATE = 0.01


@dataclass(frozen=True)
class DemoModels:
    """model_ids of the live model and the candidates, and the live decision threshold."""

    live: str
    candidates: dict[str, str]
    threshold: float
    live_path: str


def register_models(registry: ModelRegistry, seed: int) -> DemoModels:
    """Live `baseline` registered and moved to production; lr, gbdt and degraded into shadow.

    Each model's decision threshold alerts on ALERT_RATE of the traffic, as a fraud team sets it.
    """
    from shadow.kit.reference_models import build_reference_models

    built = build_reference_models(seed=seed)
    ids: dict[str, str] = {}
    thresholds: dict[str, float] = {}
    for version, kind in enumerate((LIVE, *CANDIDATES), start=1):
        model = built[kind]
        thresholds[kind] = alert_threshold(model.path, seed)
        card = registry.register(
            model.path,
            NAME,
            str(version),
            threshold=thresholds[kind],
            actor=ACTOR,
            owner="fraud-team",
            **model.info,
        )
        ids[kind] = card.model_id
        registry.transition(card.model_id, "shadow", ACTOR, f"demo: {kind} enters shadow")
    live = ids[LIVE]
    # the baseline served before shadow existed: no gate ever judged it, so say so
    why = "demo: the baseline already serving live traffic, never gated"
    registry.transition(live, "passed", ACTOR, why, override=True)
    registry.transition(live, "production", ACTOR, why, override=True)
    return DemoModels(
        live=live,
        candidates={kind: ids[kind] for kind in CANDIDATES},
        threshold=thresholds[LIVE],
        live_path=str(built[LIVE].path),
    )


def alert_threshold(path: Path, seed: int, rows: int = 5000) -> float:
    """The score above which the model alerts on ALERT_RATE of fresh synthetic traffic."""
    import numpy as np

    from shadow.kit.live_service import live_scorer
    from shadow.kit.synthetic import TransactionGenerator, feature_dicts

    frame = TransactionGenerator(seed + 99).batch(rows)
    scores = live_scorer(path, "threshold@probe", 0.5).score_features(feature_dicts(frame)).scores
    return float(np.quantile(scores, 1 - ALERT_RATE))
