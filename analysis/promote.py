"""Promote - run the gate for one model and record its registry transition, bound to the evidence.

The verdict is written to verdict.json beside the evidence (as `shadow gate` does) and the
transition carries it: the registry records the evidence id and the evidence file's sha256.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analysis.evidence import load_evidence
from analysis.gate import evaluate_all
from analysis.policy import GateVerdict, default_policy_path, load_policy
from shadow.errors import UsageError
from shadow.settings import Settings
from shadow.verdicts import GateEvidence, record_verdicts

if TYPE_CHECKING:
    from shadow.registry import ModelRegistry

logger = logging.getLogger(__name__)

PRODUCTION = "production"


def promote_model(
    settings: Settings,
    model_id: str,
    evidence_path: Path,
    policy_path: Path | None,
    *,
    to_production: bool = False,
    actor: str | None = None,
    target: str | None = None,
) -> tuple[GateVerdict, Any]:
    """shadow -> passed|failed by the verdict; with to_production, passed -> production.

    Returns the verdict and the last recorded event (None when nothing was recorded: a
    production promotion whose gate failed).
    """
    from shadow.registry import ModelRegistry

    if target not in (None, PRODUCTION):
        raise UsageError(f"--to {target}: only `production` can be asked for")
    policy = load_policy(policy_path)
    [verdict] = evaluate_all(policy, load_evidence(evidence_path), [model_id])
    policy_file = policy_path or default_policy_path()
    proof = record_verdicts(evidence_path, [verdict], policy_file)[model_id]
    registry = ModelRegistry.from_settings(settings)
    try:
        return verdict, _record(registry, verdict, proof, to_production, actor)
    finally:
        registry.close()


def _record(
    registry: ModelRegistry,
    verdict: GateVerdict,
    proof: GateEvidence,
    to_production: bool,
    actor: str | None,
) -> Any:
    model_id = verdict.candidate
    state = registry.get(model_id).state
    reason = verdict.summary
    if not to_production:
        to_state = "passed" if verdict.passed else "failed"
        return registry.transition(model_id, to_state, actor, reason, evidence=proof)
    if not verdict.passed:
        logger.warning("model %s: not promoted to production: %s", model_id, reason)
        return None
    if state == "shadow":
        registry.transition(model_id, "passed", actor, reason, evidence=proof)
    return registry.transition(model_id, PRODUCTION, actor, f"promoted: {reason}", evidence=proof)
