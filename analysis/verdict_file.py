"""Verdict file - verdict.json beside evidence.json, as shadow.verdicts defines it (the one
document the registry checks a promotion against), with what the report adds: the candidates
the gate could not judge and the promotion, if any."""

from __future__ import annotations

from pathlib import Path

from analysis.judgement import Promotion
from analysis.policy import GateVerdict, Policy
from shadow.verdicts import verdict_document, write_verdict


def write_verdicts(
    evidence_path: Path,
    verdicts: list[GateVerdict],
    policy: Policy,
    promotion: Promotion | None = None,
    unjudged: dict[str, str] | None = None,
) -> Path:
    """Write verdict.json beside the evidence file; returns its path."""
    document = verdict_document(
        evidence_path, verdicts, Path(policy.source) if policy.source else None
    )
    document["unjudged"] = dict(unjudged or {})
    document["promotion"] = promotion.to_dict() if promotion else None
    return write_verdict(document, evidence_path)
