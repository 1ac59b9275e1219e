"""Demo verdict - gate every candidate, record the transitions, pick and promote the best one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from shadow.app.demo.models import ACTOR
from shadow.settings import Settings

COLUMNS = {
    "alert κ": "kappa_at_matched_rate",
    "PSI": "psi",
    "AUC Δ low": "roc_auc_delta_ci_low",
    "req p99 ms": "request_latency_p99_ms",
}


def decide(
    settings: Settings, evidence: dict[str, Any], evidence_path: Path
) -> tuple[list, str | None]:
    """shadow -> passed|failed for each candidate (verdict.json beside the evidence); the best
    passing one, to be promoted (None when none passed)."""
    from analysis.evidence import candidate_metrics
    from analysis.promote import promote_model

    verdicts = []
    for model_id in sorted(evidence.get("candidates", {})):
        verdict, _ = promote_model(settings, model_id, evidence_path, None, actor=ACTOR)
        verdicts.append(verdict)
    passed = [v.candidate for v in verdicts if v.passed]
    if not passed:
        return verdicts, None
    return verdicts, max(passed, key=lambda m: _merit(candidate_metrics(evidence, m)))


def promote(settings: Settings, model_id: str, evidence_path: Path) -> None:
    """passed -> production, bound to the same gate verdict (retires the live model)."""
    from analysis.promote import promote_model

    promote_model(settings, model_id, evidence_path, None, to_production=True, actor=ACTOR)


def publish_outcome(
    evidence: dict[str, Any],
    evidence_path: Path,
    verdicts: list,
    promoted: str | None,
    replaced: str | None,
) -> dict[str, Path]:
    """verdict.json and the report, opening with the verdicts and the promotion."""
    from analysis.judgement import Judgement, Promotion
    from analysis.policy import load_policy
    from analysis.run import publish

    evidence_id = str(evidence.get("evidence_id", ""))
    promotion = Promotion(promoted, evidence_id, replaced) if promoted else None
    return publish(evidence, evidence_path, Judgement(load_policy(), verdicts), promotion)


def _merit(metrics: dict[str, float | None]) -> tuple[float, float]:
    """Rank passing candidates: ranking quality gained first, agreement with live second."""
    auc = metrics.get("roc_auc_delta")
    agreement = metrics.get("kappa_at_matched_rate")
    return (auc if auc is not None else 0.0, agreement if agreement is not None else 0.0)


def verdict_table(verdicts: list[Any], promoted: str | None) -> Table:
    """candidate, agreement, PSI, AUC delta, p99 latency, verdict; the failed rules beneath."""
    table = Table(title="gate verdicts (default policy)", title_justify="left")
    table.add_column("candidate", no_wrap=True)
    for name in COLUMNS:
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    reasons = []
    for verdict in verdicts:
        values = {r.rule.metric: r.value for r in verdict.results}
        cells = [_fmt(values.get(metric)) for metric in COLUMNS.values()]
        if verdict.candidate == promoted:
            outcome = "[green]passed → production[/]"
        elif verdict.passed:
            outcome = "[green]passed[/]"
        else:
            outcome = "[red]failed[/]" if verdict.status == "fail" else "[yellow]insufficient[/]"
            reasons += [_failed(verdict.candidate, r) for r in verdict.blocking]
        table.add_row(verdict.candidate, *cells, outcome)
    if reasons:
        table.caption = "\n".join(reasons)
        table.caption_justify = "left"
    return table


def _failed(candidate: str, result: Any) -> str:
    """One blocking rule: which, the value and the threshold it missed."""
    rule = result.rule
    verb = "failed" if result.status == "fail" else "lacks evidence for"
    return f"{candidate} {verb} {rule.metric}: {_fmt(result.value)}, needs {rule.threshold}"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
