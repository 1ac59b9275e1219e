"""Registry events - the append-only history: one row per change, how it came about, queries.

An event's ``kind`` says how it came about: ``registered``, ``transition`` (a move, with the
gate's evidence where it needs one), ``override`` (a move that needs evidence, made without it),
``superseded`` (production -> retired because another model was promoted; it carries that
promotion's evidence), ``rollback``, or ``note`` (no state change). Rows written before events
had a kind read as the kind their states imply.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, or_, select

from shadow.errors import ConcurrentTransition
from shadow.registry_db import as_utc, compare_and_set, events, models

KINDS = ("registered", "transition", "override", "superseded", "rollback", "note")


@dataclass(frozen=True)
class Event:
    """One line of a model's history; from_state is None for the registration itself."""

    event_id: int
    model_id: str
    from_state: str | None
    to_state: str
    actor: str
    reason: str
    evidence: str | None
    at: dt.datetime
    kind: str = "transition"
    """One of KINDS (see the module docstring)."""
    evidence_sha256: str | None = None
    """sha256 of the evidence file the gate judged, when the move carried a gate verdict."""


@dataclass(frozen=True)
class Proof:
    """What a move carries: the gate's evidence id and its file's digest, and the event kind."""

    evidence: str | None = None
    evidence_sha256: str | None = None
    kind: str = "transition"


def append_event(
    conn: Connection,
    model_id: str,
    from_state: str | None,
    to_state: str,
    actor: str,
    reason: str,
    proof: Proof,
    now: dt.datetime,
) -> Event:
    values: dict[str, Any] = {
        "model_id": model_id,
        "from_state": from_state,
        "to_state": to_state,
        "actor": actor,
        "reason": reason,
        "evidence": proof.evidence,
        "at": now,
        "kind": proof.kind,
        "evidence_sha256": proof.evidence_sha256,
    }
    result = conn.execute(events.insert().values(**values))
    key = result.inserted_primary_key
    assert key is not None  # an INSERT of one row always has its key
    return Event(event_id=int(key[0]), **values)


def production_ids(conn: Connection, name: str) -> list[str]:
    query = select(models.c.model_id).where(models.c.name == name, models.c.state == "production")
    return sorted(conn.execute(query).scalars())


def retire_production(
    conn: Connection,
    name: str,
    model_id: str,
    actor: str,
    now: dt.datetime,
    proof: Proof,
    seen: list[str],
) -> None:
    """Retire the production model the promoter saw (`seen`); ConcurrentTransition when another
    promotion changed production meanwhile, so of two racing promotions exactly one wins."""
    query = select(models).where(models.c.name == name, models.c.state == "production")
    current = conn.execute(query).all()
    if sorted(old.model_id for old in current) != seen:
        raise ConcurrentTransition(
            f"model {model_id}: the production model of {name} changed while it was being "
            "promoted; re-read it and retry"
        )
    for old in current:
        compare_and_set(conn, old, "retired", now)
        reason = f"superseded by {model_id}"
        append_event(conn, old.model_id, "production", "retired", actor, reason, proof, now)


def event_of(row: Any) -> Event:
    return Event(
        event_id=row.event_id,
        model_id=row.model_id,
        from_state=row.from_state,
        to_state=row.to_state,
        actor=row.actor,
        reason=row.reason,
        evidence=row.evidence,
        at=as_utc(row.at),
        kind=row.kind or _implied_kind(row.from_state, row.to_state),
        evidence_sha256=row.evidence_sha256,
    )


def _implied_kind(from_state: str | None, to_state: str) -> str:
    """The kind of an event written before events had one."""
    if from_state is None:
        return "registered"
    return "note" if from_state == to_state else "transition"


def state_changes() -> Any:
    """Events that changed a state (registration included): every one but the notes."""
    return or_(events.c.from_state.is_(None), events.c.from_state != events.c.to_state)


def production_history(conn: Connection, name: str) -> list[tuple[Event, str]]:
    """Every event that moved a model of `name` into or out of production, with the state its
    model is in now, oldest first."""
    query = (
        select(events, models.c.state.label("model_state"))
        .join(models, models.c.model_id == events.c.model_id)
        .where(
            models.c.name == name,
            or_(events.c.to_state == "production", events.c.from_state == "production"),
            state_changes(),
        )
        .order_by(events.c.event_id)
    )
    return [(event_of(row), row.model_state) for row in conn.execute(query)]


def last_state_changes(conn: Connection, model_ids: list[str]) -> dict[str, Event]:
    """Per model, the event that put it in its current state."""
    if not model_ids:
        return {}
    latest = (
        select(func.max(events.c.event_id).label("event_id"))
        .where(state_changes(), events.c.model_id.in_(model_ids))
        .group_by(events.c.model_id)
        .scalar_subquery()
    )
    rows = conn.execute(select(events).where(events.c.event_id.in_(latest)))
    return {row.model_id: event_of(row) for row in rows}
