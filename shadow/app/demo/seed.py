"""Demo seed - the demo's models and traffic for a deployment that already runs (compose).

Registers the reference models in the configured registry (the live baseline in production,
three candidates in shadow) unless they are there already, sends synthetic live traffic through
the tap, writes its late labels, and waits until the running workers have committed every
sampled transaction, so a `shadow compare` that follows sees all of it.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from shadow.app.demo.models import NAME, DemoModels, register_models
from shadow.errors import RegistryError, ServiceError
from shadow.settings import Settings

logger = logging.getLogger(__name__)

DRAIN_TIMEOUT_S = 300.0
"""How long to wait for the workers to commit the traffic before failing."""


def demo_models(settings: Settings, seed: int) -> DemoModels:
    """The demo models in the registry: registered now, or found from an earlier run."""
    from shadow.app.demo.models import CANDIDATES, LIVE
    from shadow.kit.reference_models import build_reference_models
    from shadow.registry import ModelRegistry

    registry = ModelRegistry.from_settings(settings)
    try:
        try:
            live = registry.get(f"{NAME}@1")
        except RegistryError:
            return register_models(registry, seed)
        ids = {kind: f"{NAME}@{v}" for v, kind in enumerate(CANDIDATES, start=2)}
        path = build_reference_models(seed=seed)[LIVE].path  # cached: the same file
        logger.info("demo models already registered (%s is %s)", live.card.model_id, live.state)
        return DemoModels(live.card.model_id, ids, live.card.threshold, str(path))
    finally:
        registry.close()


def seed_traffic(settings: Settings, seconds: float, tps: float, seed: int) -> dict[str, Any]:
    """Models, traffic, labels, and the workers' commits; the traffic summary."""
    from shadow.kit.live_service import SyntheticLiveService
    from shadow.objectstore import open_store

    models = demo_models(settings, seed)
    service = SyntheticLiveService(
        settings, Path(models.live_path), models.live, seed + 1, models.threshold
    )
    summary = service.run(tps, seconds).summary()
    summary["labels_key"] = service.write_labels(open_store(settings.store))
    summary["live"], summary["candidates"] = models.live, sorted(models.candidates.values())
    _wait_committed(settings, DRAIN_TIMEOUT_S)
    return summary


def _wait_committed(settings: Settings, timeout: float) -> None:
    from shadow.app.demo.progress import group_lag
    from shadow.clients import base_config

    kafka, group = settings.kafka, settings.worker.group_id
    deadline = time.monotonic() + timeout
    lag = None
    while time.monotonic() < deadline:
        lag = group_lag(base_config(kafka), kafka.topic, group)
        if lag == 0:
            return
        time.sleep(2.0)
    raise ServiceError(
        "kafka",
        f"group {group} still lags {lag} record(s) on {kafka.topic} after {timeout:.0f}s: "
        "are the workers running?",
    )
