"""Gate - apply a policy to a comparison's evidence: a verdict per candidate, exit codes for CI."""

from __future__ import annotations

from typing import Any

from analysis.evidence import candidate_metrics
from analysis.policy import GateVerdict, Policy, RuleResult
from shadow.errors import UsageError

EXIT_PASS = 0
EXIT_FAIL = 1
EXIT_UNUSABLE = 2


def evaluate(policy: Policy, evidence: dict[str, Any], candidate: str) -> GateVerdict:
    """Every rule of the policy against one candidate; UsageError when the window was empty."""
    metrics = candidate_metrics(evidence, candidate)
    if not evidence.get("transactions"):
        raise UsageError("the evidence window is empty: no sampled transactions to judge")
    if not metrics.get("transactions"):
        raise UsageError(f"candidate {candidate} has no scored transaction in the window")
    positives = metrics.get("labelled_positives")
    results = tuple(
        RuleResult(rule, metrics.get(rule.metric), rule.check(metrics.get(rule.metric), positives))
        for rule in policy.rules
    )
    return GateVerdict(candidate, str(evidence.get("evidence_id", "")), policy.name, results)


def evaluate_all(
    policy: Policy, evidence: dict[str, Any], candidates: list[str] | None = None
) -> list[GateVerdict]:
    """Verdicts for the named candidates, else for every candidate in the evidence."""
    names = candidates or sorted(evidence.get("candidates", {}))
    if not names:
        raise UsageError("the evidence has no candidate: the window held no candidate score")
    return [evaluate(policy, evidence, name) for name in names]


def exit_code(verdicts: list[GateVerdict]) -> int:
    return EXIT_PASS if all(v.passed for v in verdicts) else EXIT_FAIL
