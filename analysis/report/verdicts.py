"""Verdict lines - the report's first screen: one line per candidate (PASS, FAIL, INSUFFICIENT
EVIDENCE, NOT JUDGED) with the rules that block it, value against threshold, and the
promotion that followed; and each candidate's full rule table."""

from __future__ import annotations

from typing import Any

from analysis.evidence import labelled_metric
from analysis.judgement import Judgement, Promotion
from analysis.policy import FAIL, INSUFFICIENT, PASS, SKIP, GateVerdict, RuleResult
from analysis.report.formats import number
from analysis.report.page import Code, Mark, Part, Table, Text, VerdictLine, text

STATUS = {PASS: "PASS", FAIL: "FAIL", INSUFFICIENT: "INSUFFICIENT EVIDENCE"}
NOT_JUDGED = "NOT JUDGED"


def verdict_title(judgement: Judgement | None) -> Text:
    if judgement is None:
        return text("Verdicts: not judged (no policy was applied to this evidence)")
    policy = judgement.policy
    return text("Verdicts (policy ", Code(policy.name), f", {len(policy.rules)} rules)")


def verdict_lines(
    evidence: dict[str, Any], judgement: Judgement | None, anchors: dict[str, str]
) -> list[VerdictLine]:
    """One line per candidate, in the evidence's order."""
    if judgement is None:
        hint = text("run ", Code("shadow gate --evidence evidence.json"), " for a verdict")
        return [VerdictLine(NOT_JUDGED, m, hint, anchors.get(m, "")) for m in anchors]
    found = {v.candidate: v for v in judgement.verdicts}
    lines = []
    for model, anchor in anchors.items():
        if model in found:
            verdict = found[model]
            detail = _detail(verdict, evidence)
            lines.append(VerdictLine(STATUS[verdict.status], model, detail, anchor))
        elif model in judgement.unjudged:
            lines.append(
                VerdictLine(NOT_JUDGED, model, text(Code(judgement.unjudged[model])), anchor)
            )
        else:
            lines.append(VerdictLine(NOT_JUDGED, model, text("not asked for"), anchor))
    return lines


def outcome(promotion: Promotion | None, judgement: Judgement | None) -> list[Text]:
    """What followed the verdicts: the promotion, or that none happened."""
    if promotion is not None:
        replaced: Text = ()
        if promotion.replaced is not None:
            replaced = text(" (replacing ", Code(promotion.replaced), ")")
        return [
            text("Promoted ", Code(promotion.model_id), " to production")
            + replaced
            + text("; evidence ", Code(promotion.evidence_id))
        ]
    if (
        judgement is not None
        and judgement.verdicts
        and not any(v.passed for v in judgement.verdicts)
    ):
        return [text("No candidate passed: none may be promoted")]
    return []


def _detail(verdict: GateVerdict, evidence: dict[str, Any]) -> Text:
    positives = _positives(evidence, verdict.candidate)
    if verdict.blocking:
        parts: list[Part] = []
        for number_, result in enumerate(verdict.blocking):
            parts += (["; "] if number_ else []) + list(_blocking(result, positives))
        return tuple(parts)
    passed = sum(r.status == PASS for r in verdict.results)
    skipped = [r.rule.metric for r in verdict.results if r.status == SKIP]
    words = f"{passed} of {len(verdict.results)} rules passed"
    if skipped:
        return text(words + ", skipped (not measured, optional): ", Code(", ".join(skipped)))
    return text(words)


def _blocking(result: RuleResult, positives: float | None) -> Text:
    rule = result.rule
    measured = "not measured" if result.value is None else f"= {number(result.value)}"
    if labelled_metric(rule.metric):
        frauds = "no labels" if positives is None else f"{positives:,.0f} labelled frauds"
        measured += f" on {frauds}"
    return text(Code(rule.metric), f" {measured} (needs {readable(rule.threshold)})")


def readable(threshold: str) -> str:
    """A rule's threshold with the comparison signs a reader expects (>= as ≥)."""
    return threshold.replace(">=", "≥").replace("<=", "≤")


def _positives(evidence: dict[str, Any], model: str) -> float | None:
    labelled = (evidence.get("candidates", {}).get(model) or {}).get("labelled") or {}
    return labelled.get("positives")


def rule_table(verdict: GateVerdict) -> Table:
    rows = tuple(
        (
            Code(r.rule.metric),
            number(r.value, "{:.6g}"),
            readable(r.rule.threshold),
            Mark(STATUS.get(r.status, r.status.upper()), r.status),
            Code(" ".join(r.rule.why.split()), prose=True),
        )
        for r in verdict.results
    )
    return Table(("rule", "value", "threshold", "result", "why"), rows, _summary(verdict))


def _summary(verdict: GateVerdict) -> Text:
    counts = {s: sum(r.status == s for r in verdict.results) for s in STATUS | {SKIP: ""}}
    return text(
        f"{counts[PASS]} passed, {counts[FAIL]} failed, {counts[INSUFFICIENT]} lacked evidence, "
        f"{counts[SKIP]} skipped (optional, not measured)"
    )
