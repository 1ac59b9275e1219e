"""Verdict file - verdict.json beside evidence.json: the gate's verdicts bound to the exact
evidence file (its id and sha256) and policy they were taken on, and the promotion if any."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

from analysis.judgement import Promotion
from analysis.policy import GateVerdict, Policy

KIND = "shadow-verdict"
VERSION = 1
FILE = "verdict.json"


def write_verdicts(
    out_dir: Path,
    evidence_path: Path,
    verdicts: list[GateVerdict],
    policy: Policy,
    promotion: Promotion | None = None,
    unjudged: dict[str, str] | None = None,
) -> Path:
    """Write out_dir/verdict.json; returns its path."""
    evidence_bytes = evidence_path.read_bytes()
    evidence = json.loads(evidence_bytes)
    document: dict[str, Any] = {
        "kind": KIND,
        "version": VERSION,
        "created_at": dt.datetime.now(dt.UTC).isoformat(),
        "evidence_id": evidence.get("evidence_id"),
        "evidence_sha256": hashlib.sha256(evidence_bytes).hexdigest(),
        "policy": _policy(policy),
        "verdicts": [v.to_dict() for v in verdicts],
        "unjudged": dict(unjudged or {}),
        "promotion": promotion.to_dict() if promotion else None,
    }
    path = out_dir / FILE
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path


def _policy(policy: Policy) -> dict[str, Any]:
    """The policy's name, file and the sha256 of its text (None when it has no readable file)."""
    digest = None
    if policy.source:
        try:
            digest = hashlib.sha256(Path(policy.source).read_bytes()).hexdigest()
        except OSError:
            digest = None
    return {"name": policy.name, "source": policy.source, "sha256": digest}
