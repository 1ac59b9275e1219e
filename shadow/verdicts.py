"""Verdict document - the gate's verdict.json, which binds a promotion to the evidence it judged.

The gate writes ``verdict.json`` beside the ``evidence.json`` it read::

    {"kind": "shadow-gate-verdict", "version": 1, "created_at": "...",
     "evidence": {"file": "evidence.json", "id": "ev-...", "sha256": "<hex of the file's bytes>"},
     "policy": {"file": "/path/policy.yaml", "sha256": "<hex>"},
     "verdicts": {"fraud@2": {"passed": true, "gate": {<GateVerdict.to_dict()>}}, ...}}

``read_gate_evidence`` is what the registry trusts for a move to ``passed`` or ``production``:
the evidence file beside the verdict must still have the digest the gate recorded and the id the
gate judged, and the model must be among the verdicts. A later gate run on the same evidence and
policy adds its candidates to the document; any other run replaces it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from shadow.errors import UsageError

logger = logging.getLogger(__name__)

KIND = "shadow-gate-verdict"
VERSION = 1
VERDICT_FILE = "verdict.json"
EVIDENCE_FILE = "evidence.json"


class Judged(Protocol):
    """What the document needs of a gate verdict (analysis.policy.GateVerdict is one)."""

    @property
    def candidate(self) -> str: ...

    @property
    def evidence_id(self) -> str: ...

    @property
    def passed(self) -> bool: ...

    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class GateEvidence:
    """A gate's verdict on one model, bound to the exact evidence file it was taken on."""

    model_id: str
    passed: bool
    evidence_id: str
    evidence_sha256: str
    source: str
    """Where the verdict was read (for messages)."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verdict_document(
    evidence_path: Path, verdicts: Sequence[Judged], policy_path: Path | None
) -> dict[str, Any]:
    """The document for verdicts the gate just gave on the evidence file at `evidence_path`."""
    data = _read_bytes(evidence_path, "evidence file")
    evidence_id = _evidence_id(data, evidence_path)
    for verdict in verdicts:
        if verdict.evidence_id != evidence_id:
            raise UsageError(
                f"{evidence_path} changed while the gate read it (evidence {evidence_id}, "
                f"judged {verdict.evidence_id}): run the gate again"
            )
    policy = None
    if policy_path is not None:
        digest = sha256_bytes(_read_bytes(policy_path, "policy file"))
        policy = {"file": str(policy_path), "sha256": digest}
    return {
        "kind": KIND,
        "version": VERSION,
        "created_at": dt.datetime.now(dt.UTC).isoformat(),
        "evidence": {"file": evidence_path.name, "id": evidence_id, "sha256": sha256_bytes(data)},
        "policy": policy,
        "verdicts": {
            v.candidate: {"passed": bool(v.passed), "gate": v.to_dict()} for v in verdicts
        },
    }


def write_verdict(document: dict[str, Any], evidence_path: Path) -> Path:
    """Write verdict.json (whole or not at all) beside the evidence; a document of the same
    evidence and policy already there keeps the candidates this run did not judge, and the
    keys it had that this document lacks."""
    path = evidence_path.parent / VERDICT_FILE
    try:
        previous = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (OSError, json.JSONDecodeError):
        previous = None
    if previous is not None and _same_judgement(previous, document):
        # what an earlier writer added (the report's promotion, unjudged candidates) stays
        merged = {**previous["verdicts"], **document["verdicts"]}
        document = {**previous, **document, "verdicts": merged}
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-verdict-", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(document, indent=2) + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise UsageError(f"cannot write the gate verdict {path}: {exc.strerror}") from None
    return path


def record_verdicts(
    evidence_path: Path, verdicts: Sequence[Judged], policy_path: Path | None
) -> dict[str, GateEvidence]:
    """Build the verdict document, write it beside the evidence, and give each judged model's
    GateEvidence. A folder that cannot be written loses only the file (a warning): the verdict
    just taken still binds a transition made by the same process (`shadow promote`)."""
    document = verdict_document(evidence_path, verdicts, policy_path)
    try:
        where = str(write_verdict(document, evidence_path))
    except UsageError as exc:
        logger.warning("%s; later transitions cannot cite this verdict", exc)
        where = str(evidence_path)
    return {model_id: gate_evidence(document, model_id, where) for model_id in document["verdicts"]}


def gate_evidence(document: dict[str, Any], model_id: str, source: str) -> GateEvidence:
    """One model's verdict from a document; UsageError when the gate did not judge it."""
    verdicts = document.get("verdicts")
    entry = verdicts.get(model_id) if isinstance(verdicts, dict) else None
    if not isinstance(entry, dict) or not isinstance(entry.get("passed"), bool):
        judged = ", ".join(sorted(verdicts)) if isinstance(verdicts, dict) and verdicts else "none"
        raise UsageError(
            f"the gate verdict {source} does not judge {model_id} (it judged {judged})"
        )
    evidence = document["evidence"]
    return GateEvidence(model_id, entry["passed"], evidence["id"], evidence["sha256"], source)


def read_gate_evidence(path: Path, model_id: str) -> GateEvidence:
    """The gate's verdict on `model_id`, checked against its evidence file.

    `path` is the report folder, its verdict.json, or its evidence.json (the verdict beside it).
    UsageError (one line) when the verdict is missing or unreadable, the evidence file changed
    since the gate judged it, or the model was not judged.
    """
    verdict_path = _verdict_path(path)
    document = _read_json(verdict_path, "gate verdict")
    if document.get("kind") != KIND or not isinstance(document.get("evidence"), dict):
        raise UsageError(f"{verdict_path} is not a gate verdict (written by `shadow gate`)")
    recorded = document["evidence"]
    name = Path(str(recorded.get("file") or EVIDENCE_FILE)).name  # beside the verdict, always
    evidence_path = verdict_path.parent / name
    data = _read_bytes(evidence_path, "evidence file")
    digest = sha256_bytes(data)
    if digest != recorded.get("sha256"):
        raise UsageError(
            f"{evidence_path} is not the evidence the gate judged (sha256 {digest[:12]}..., "
            f"the verdict names {str(recorded.get('sha256'))[:12]}...): run the gate again"
        )
    if _evidence_id(data, evidence_path) != recorded.get("id"):
        raise UsageError(f"{verdict_path}: its evidence id does not match {evidence_path}")
    return gate_evidence(document, model_id, str(verdict_path))


def _verdict_path(path: Path) -> Path:
    if path.is_dir():
        return path / VERDICT_FILE
    if path.name == EVIDENCE_FILE:
        return path.parent / VERDICT_FILE
    return path


def _same_judgement(previous: Any, document: dict[str, Any]) -> bool:
    return (
        isinstance(previous, dict)
        and previous.get("kind") == KIND
        and isinstance(previous.get("verdicts"), dict)
        and previous.get("evidence") == document["evidence"]
        and previous.get("policy") == document["policy"]
    )


def _evidence_id(data: bytes, path: Path) -> str:
    try:
        evidence_id = json.loads(data).get("evidence_id")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        evidence_id = None
    if not isinstance(evidence_id, str) or not evidence_id:
        raise UsageError(f"{path} is not comparison evidence (no evidence_id)")
    return evidence_id


def _read_bytes(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        hint = "" if what == "policy file" else _WHERE
        raise UsageError(f"{what} {path} does not exist{hint}") from None
    except OSError as exc:
        raise UsageError(f"cannot read the {what} {path}: {exc.strerror}") from None


_WHERE = (
    ": give the report folder where `shadow compare` wrote evidence.json and `shadow gate` "
    "wrote verdict.json"
)


def _read_json(path: Path, what: str) -> dict[str, Any]:
    data = _read_bytes(path, what)
    try:
        document = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UsageError(f"the {what} {path} is not JSON") from None
    if not isinstance(document, dict):
        raise UsageError(f"the {what} {path} is not a JSON object")
    return document
