"""Judgement - the gate applied to one evidence document for a report: every candidate's
verdict, the candidates it could not judge (and why), and a promotion if one followed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from analysis.gate import evaluate
from analysis.policy import GateVerdict, Policy
from shadow.errors import UsageError


@dataclass(frozen=True)
class Promotion:
    """A candidate moved to production on this evidence (and the model it replaced)."""

    model_id: str
    evidence_id: str
    replaced: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "to_state": "production",
            "evidence_id": self.evidence_id,
            "replaced": self.replaced,
        }


@dataclass(frozen=True)
class Judgement:
    policy: Policy
    verdicts: list[GateVerdict]
    unjudged: dict[str, str] = field(default_factory=dict)
    """Candidates the gate could not judge (e.g. no scored transaction), with the reason."""


def judge(policy: Policy, evidence: dict[str, Any], candidates: list[str] | None = None):
    """Every named candidate (else every candidate of the evidence) judged by the policy; a
    candidate the gate refuses is listed as unjudged with the gate's one-line reason."""
    verdicts, unjudged = [], {}
    for name in candidates or sorted(evidence.get("candidates", {})):
        try:
            verdicts.append(evaluate(policy, evidence, name))
        except UsageError as exc:
            unjudged[name] = str(exc)
    return Judgement(policy, verdicts, unjudged)
