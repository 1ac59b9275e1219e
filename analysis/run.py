"""Run - what `shadow compare` does: resolve the live threshold, compare, write the outputs."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

from analysis.compare import Comparison, Progress
from analysis.judgement import Judgement, Promotion, judge
from analysis.policy import Policy
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
    policy: Policy | None = None,
    report: bool = True,
) -> tuple[dict[str, Any], dict[str, Path]]:
    """Compare the window and build the evidence. With out_dir: write evidence.json and, with
    `report`, publish it (the policy's verdicts, when one is given, and the report)."""
    from analysis.evidence import build_evidence, write_evidence
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
    analysis = settings.analysis.model_dump(mode="json")
    body = comparison.run()
    evidence = build_evidence(body, store=store.uri, start=start, end=end, settings=analysis)
    if out_dir is None:
        return evidence, {}
    paths = {"evidence": out_dir / "evidence.json"}
    write_evidence(evidence, paths["evidence"])
    if report:
        (progress or (lambda step: None))("judging and writing the report")
        judgement = judge(policy, evidence) if policy is not None else None
        paths.update(publish(evidence, paths["evidence"], judgement))
    return evidence, paths


def publish(
    evidence: dict[str, Any],
    evidence_path: Path,
    judgement: Judgement | None,
    promotion: Promotion | None = None,
) -> dict[str, Path]:
    """Beside the evidence file: verdict.json (when judged), summary.md and report.html."""
    from analysis.report import write_report
    from analysis.verdict_file import write_verdicts

    out_dir = evidence_path.parent
    paths: dict[str, Path] = {}
    if judgement is not None:
        paths["verdict"] = write_verdicts(
            evidence_path,
            judgement.verdicts,
            judgement.policy,
            promotion,
            judgement.unjudged,
        )
    paths.update(write_report(evidence, out_dir, judgement, promotion))
    return paths


def _no_sqlite_file(url: str) -> bool:
    """A SQLite registry that does not exist yet: never create one just to read a threshold."""
    if not url.startswith("sqlite:///"):
        return False
    path = url.removeprefix("sqlite:///").split("?", 1)[0]
    return path != ":memory:" and not Path(path).exists()
