"""Run - what `shadow compare` does: resolve the live threshold, compare, write the outputs."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

from analysis.compare import Comparison, Progress
from shadow.settings import Settings

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.5


def live_threshold(
    settings: Settings, live_models: list[str], option: float | None
) -> tuple[float, str]:
    """The live decision threshold and where it came from: option, registry, or default."""
    if option is not None:
        return option, "option"
    if settings.analysis.live_threshold is not None:
        return settings.analysis.live_threshold, "settings"
    card_threshold = _registry_threshold(settings, live_models)
    if card_threshold is not None:
        return card_threshold, "registry"
    return DEFAULT_THRESHOLD, "default"


def _registry_threshold(settings: Settings, live_models: list[str]) -> float | None:
    """The card threshold of the live model, if the registry knows it (else of production)."""
    if len(live_models) != 1 or _no_sqlite_file(settings.registry.url):
        return None
    try:
        from shadow.registry import ModelRegistry

        registry = ModelRegistry.from_settings(settings)
    except Exception as exc:  # noqa: BLE001 - no registry is a normal case: fall back
        logger.info("live threshold: registry unavailable (%s), using the default", exc)
        return None
    try:
        return float(registry.get(live_models[0]).card.threshold)
    except Exception:  # noqa: BLE001 - the live model need not be registered
        record = registry.production(live_models[0].split("@", 1)[0])
        return float(record.card.threshold) if record is not None else None
    finally:
        registry.close()


def run_comparison(
    settings: Settings,
    start: dt.datetime,
    end: dt.datetime,
    candidates: list[str] | None,
    out_dir: Path | None,
    *,
    threshold: float | None = None,
    progress: Progress | None = None,
    skip_corrupt: bool = False,
) -> tuple[dict[str, Any], dict[str, Path]]:
    """Compare the window, build the evidence and (with out_dir) write evidence + reports."""
    from analysis.evidence import build_evidence
    from analysis.report import write_report
    from shadow.objectstore import open_store

    store = open_store(settings.store)
    comparison = Comparison(
        store,
        start,
        end,
        candidates,
        settings.analysis,
        progress=progress or (lambda step: None),
        resolve_threshold=lambda live_models: live_threshold(settings, live_models, threshold),
        skip_corrupt=skip_corrupt,
    )
    body = comparison.run()
    evidence = build_evidence(
        body,
        store=store.uri,
        start=start,
        end=end,
        settings=settings.analysis.model_dump(mode="json"),
    )
    paths = write_report(evidence, out_dir) if out_dir is not None else {}
    return evidence, paths


def _no_sqlite_file(url: str) -> bool:
    """A SQLite registry that does not exist yet: never create one just to read a threshold."""
    if not url.startswith("sqlite:///"):
        return False
    path = url.removeprefix("sqlite:///").split("?", 1)[0]
    return path != ":memory:" and not Path(path).exists()
