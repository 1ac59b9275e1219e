"""Lifecycle rules - the moves allowed, which of them need a gate's evidence, a rollback's target.

States and the moves allowed between them (``MOVES``)::

    registered -> shadow | retired
    shadow     -> passed | failed | retired
    passed     -> production | retired
    failed     -> retired
    production -> retired
    retired    (final, except for a rollback)

A move to ``passed`` or ``production`` needs the verdict of a gate that passed the model
(``shadow.verdicts.GateEvidence``), or an explicit override with a reason, which is recorded as
one. A rollback puts back the latest model that was in production before the current one and was
not itself rolled back.
"""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Iterable

from sqlalchemy import Connection, select

from shadow.errors import ConcurrentTransition, RegistryError
from shadow.registry_db import compare_and_set, locked_row, models, now_utc
from shadow.registry_events import Event, Proof, append_event, production_history
from shadow.verdicts import GateEvidence

STATES = ("registered", "shadow", "passed", "failed", "production", "retired")
MOVES: dict[str, tuple[str, ...]] = {
    "registered": ("shadow", "retired"),
    "shadow": ("passed", "failed", "retired"),
    "passed": ("production", "retired"),
    "failed": ("retired",),
    "production": ("retired",),
    "retired": (),
}
NEED_EVIDENCE = ("passed", "production")
"""States a model enters only with a passing gate verdict (or a recorded override)."""


def resolve_actor(given: str | None = None) -> str:
    """Who acts, for every command and event: the name given (--actor), else $GITHUB_ACTOR (a
    GitHub Actions run), else user@host."""
    if given and given.strip():
        return given.strip()
    if os.environ.get("GITHUB_ACTOR", "").strip():
        return os.environ["GITHUB_ACTOR"].strip()
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def check_state(state: str) -> None:
    if state not in STATES:
        raise RegistryError(f"unknown state {state!r}; states are {', '.join(STATES)}")


def check_move(model_id: str, current: str, to_state: str) -> None:
    allowed = MOVES[current]
    if to_state in allowed:
        return
    moves = ", ".join(allowed) if allowed else f"none ({current} is final)"
    raise RegistryError(
        f"model {model_id} is {current}: it cannot move to {to_state}; allowed moves: {moves}"
    )


def proof_for(
    model_id: str, to_state: str, evidence: GateEvidence | str | None, override: bool
) -> Proof:
    """What the event records; RegistryError when a move that needs evidence lacks it."""
    if isinstance(evidence, GateEvidence):
        if evidence.model_id != model_id:
            raise RegistryError(
                f"model {model_id}: the verdict given is about {evidence.model_id} "
                f"({evidence.source})"
            )
        proof = Proof(evidence.evidence_id, evidence.evidence_sha256)
    else:
        proof = Proof(evidence)
    if to_state not in NEED_EVIDENCE:
        if override:
            raise RegistryError(
                f"model {model_id}: --override applies only to moves to passed or production"
            )
        return proof
    if override:
        return Proof(proof.evidence, proof.evidence_sha256, "override")
    if not isinstance(evidence, GateEvidence):
        raise RegistryError(
            f"model {model_id}: a move to {to_state} needs the verdict of a gate that passed it "
            '(--evidence REPORT_FOLDER), or --override --reason "..."'
        )
    if not evidence.passed:
        raise RegistryError(
            f"model {model_id}: the gate did not pass it (evidence {evidence.evidence_id}, "
            f'{evidence.source}); a move to {to_state} needs --override --reason "..."'
        )
    return proof


def rollback_target(entries: Iterable[tuple[Event, str]], current: str) -> str | None:
    """The model to put back: newest first among the events that put a model of the name into
    production or took one out by a rollback (with each model's state now), the first model
    that entered production, is not the current one, was not rolled back, and is retired."""
    rolled_back: set[str] = set()
    ordered = sorted(entries, key=lambda entry: entry[0].event_id)
    for event, _state in ordered:
        if event.kind == "rollback" and event.from_state == "production":
            rolled_back.add(event.model_id)
    for event, state in reversed(ordered):
        model_id = event.model_id
        entered = event.to_state == "production"
        if entered and model_id != current and model_id not in rolled_back and state == "retired":
            return model_id
    return None


def rollback_pair(conn: Connection, name: str) -> tuple[str, str]:
    """(the current production model of `name`, the model a rollback puts back)."""
    current = conn.execute(
        select(models.c.model_id).where(models.c.name == name, models.c.state == "production")
    ).scalar_one_or_none()
    if current is None:
        raise RegistryError(f"{name} has no production model: there is nothing to roll back")
    target = rollback_target(production_history(conn, name), current)
    if target is None:
        raise RegistryError(
            f"{name}: no model was in production before {current} (and not rolled back)"
        )
    return current, target


def roll_back(
    conn: Connection, name: str, pair: tuple[str, str], actor: str, reason: str
) -> list[Event]:
    """In the caller's transaction: the current model production -> retired, the previous one
    retired -> production, each with a ``rollback`` event; ConcurrentTransition when production
    changed since `pair` was read."""
    current, target = pair
    rows = {model_id: locked_row(conn, model_id) for model_id in pair}
    if (rows[current].state, rows[target].state) != ("production", "retired") or (
        rollback_pair(conn, name) != pair
    ):
        raise ConcurrentTransition(f"{name}: production changed meanwhile; retry the rollback")
    now = now_utc()
    done = []
    for model_id, to_state, why in (
        (current, "retired", f"rolled back to {target}: {reason}"),
        (target, "production", f"rollback from {current}: {reason}"),
    ):
        row = rows[model_id]
        compare_and_set(conn, row, to_state, now)
        proof = Proof(kind="rollback")
        done.append(append_event(conn, model_id, row.state, to_state, actor, why, proof, now))
    return done
