"""ModelRegistry - the governance store: model cards, lifecycle states and their history.

States and the moves allowed between them (``MOVES``)::

    registered -> shadow | retired
    shadow     -> passed | failed | retired
    passed     -> production | retired
    failed     -> retired
    production -> retired
    retired    (final)

Every change is an append-only event (actor, time, reason, evidence). Promoting a model to
``production`` retires the name's previous production model in the same database transaction.
A state change is a compare-and-set on ``row_version``: of two concurrent transitions on one model
exactly one wins, the other gets ConcurrentTransition. Notes that change no state (the worker's
"unloaded after N failed batches") are events too, written by ``record_event`` with
from_state == to_state. ONNX files live in the object store under
``models/<name>/<version>/model.onnx``.
"""

from __future__ import annotations

import datetime as dt
import getpass
import logging
import re
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select, update
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from shadow import registry_checks as checks
from shadow.errors import ConcurrentTransition, ModelError, RegistryError, RegistryUnavailable
from shadow.modelcard import ModelCard, model_id_of, sha256_file, sha256_of, split_model_id
from shadow.objectstore import ObjectStore
from shadow.registry_db import events, models, open_engine

if TYPE_CHECKING:
    from shadow.settings import Settings

logger = logging.getLogger(__name__)

STATES = ("registered", "shadow", "passed", "failed", "production", "retired")
MOVES: dict[str, tuple[str, ...]] = {
    "registered": ("shadow", "retired"),
    "shadow": ("passed", "failed", "retired"),
    "passed": ("production", "retired"),
    "failed": ("retired",),
    "production": ("retired",),
    "retired": (),
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass(frozen=True)
class ModelRecord:
    """A registered model: its card, its current state and where its file is."""

    card: ModelCard
    state: str
    object_key: str
    updated_at: dt.datetime
    row_version: int

    @property
    def model_id(self) -> str:
        return self.card.model_id


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


def default_actor() -> str:
    """Who is acting when nobody said: user@host."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def object_key_of(name: str, version: str) -> str:
    return f"models/{name}/{version}/model.onnx"


class ModelRegistry:
    """Models, states and history in a SQL database; model files in an object store."""

    def __init__(self, url: str, store: ObjectStore) -> None:
        self.url = url
        self.store = store
        try:
            self._engine = open_engine(url)
        except OperationalError as exc:
            raise RegistryUnavailable(f"registry {_safe(url)}: {_first(exc)}") from None

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelRegistry:
        from shadow.objectstore import open_store

        return cls(settings.registry.url, open_store(settings.store))

    def close(self) -> None:
        self._engine.dispose()

    def register(
        self,
        path: Path | str,
        name: str,
        version: str,
        threshold: float = 0.5,
        canary: dict[str, Any] | None = None,
        canary_score: float | None = None,
        feature_names: list[str] | tuple[str, ...] | None = None,
        actor: str | None = None,
        owner: str = "",
        description: str = "",
        training_data: str = "",
        sha256: str | None = None,
    ) -> ModelCard:
        """Check the file and record it in state ``registered``; nothing is left on refusal.

        ``feature_names`` is the list of transaction features (every input must be one);
        ``sha256`` the digest the caller expects; ``canary`` defaults to a fixed synthetic
        transaction, and ``canary_score``, when given, must be reproduced within 1e-5.
        """
        model_id = model_id_of(name, version)
        _check_names(name, version)
        self._refuse_existing(model_id)
        model, data = checks.read_model_bytes(model_id, Path(path))
        checks.check_sha256(model_id, data, sha256)
        signature = checks.signature_of(model_id, model)
        checks.check_features(model_id, signature, feature_names)
        card = ModelCard(
            model_id=model_id,
            name=name,
            version=version,
            sha256=sha256_of(data),
            features=signature.features,
            input_kind=signature.input_kind,
            score_output=signature.score_output,
            threshold=threshold,
            canary=dict(canary) if canary is not None else checks.default_canary(),
            owner=owner,
            description=description,
            training_data=training_data,
        )
        card = _with_canary_score(card, data, canary_score)
        self._insert(card, data, actor or default_actor())
        logger.info("registered model %s (%s)", model_id, card.sha256[:12])
        return card

    def get(self, model_id: str) -> ModelRecord:
        with self._read() as conn:
            row = conn.execute(select(models).where(models.c.model_id == model_id)).one_or_none()
        if row is None:
            raise RegistryError(f"model {model_id} is not registered")
        return _record(row)

    def list(self, state: str | None = None) -> list[ModelRecord]:
        query = select(models).order_by(models.c.name, models.c.created_at, models.c.version)
        if state is not None:
            _check_state(state)
            query = query.where(models.c.state == state)
        with self._read() as conn:
            return [_record(row) for row in conn.execute(query)]

    def shadow_set(self) -> list[ModelCard]:
        """Exactly the models in state ``shadow``: what the workers must load."""
        return [record.card for record in self.list("shadow")]

    def production(self, name: str) -> ModelRecord | None:
        query = select(models).where(models.c.name == name, models.c.state == "production")
        with self._read() as conn:
            row = conn.execute(query).one_or_none()
        return _record(row) if row is not None else None

    def history(self, model_id: str) -> list[Event]:
        self.get(model_id)
        query = select(events).where(events.c.model_id == model_id).order_by(events.c.event_id)
        with self._read() as conn:
            return [_event(row) for row in conn.execute(query)]

    def transition(
        self,
        model_id: str,
        to_state: str,
        actor: str | None = None,
        reason: str = "",
        evidence: str | None = None,
    ) -> Event:
        """Move a model to another state, as one event; RegistryError when the move is illegal."""
        _check_state(to_state)
        if not reason.strip():
            raise RegistryError(f"model {model_id}: a transition needs a reason")
        who = actor or default_actor()
        with self._write() as conn:
            row = _locked_row(conn, model_id)
            _check_move(model_id, row.state, to_state)
            now = _now()
            if to_state == "production":
                _retire_production(conn, row.name, model_id, who, now, evidence)
            _compare_and_set(conn, row, to_state, now)
            event = _append(conn, model_id, row.state, to_state, who, reason, evidence, now)
        logger.info("model %s: %s -> %s by %s", model_id, row.state, to_state, who)
        return event

    def record_event(
        self, model_id: str, actor: str, reason: str, evidence: str | None = None
    ) -> Event:
        """A note in the history that changes no state (e.g. a worker unloading a model)."""
        with self._write() as conn:
            row = _locked_row(conn, model_id)
            return _append(conn, model_id, row.state, row.state, actor, reason, evidence, _now())

    def fetch(self, model_id: str, cache_dir: Path) -> Path:
        """A local copy of the model's ONNX file, sha256 verified (cached by name/version)."""
        record = self.get(model_id)
        target = Path(cache_dir) / record.card.name / record.card.version / "model.onnx"
        if target.is_file() and sha256_file(target) == record.card.sha256:
            return target
        data = self.store.get(record.object_key)
        if sha256_of(data) != record.card.sha256:
            raise ModelError(model_id, f"sha256 mismatch in the store at {record.object_key}")
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, prefix=".tmp-", delete=False) as out:
            out.write(data)
        Path(out.name).replace(target)
        return target

    def _refuse_existing(self, model_id: str) -> None:
        try:
            state = self.get(model_id).state
        except RegistryUnavailable:
            raise
        except RegistryError:
            return
        raise RegistryError(f"model {model_id} is already registered (state {state})")

    def _insert(self, card: ModelCard, data: bytes, actor: str) -> None:
        key = object_key_of(card.name, card.version)
        written = False
        now = _now()
        try:
            with self._write() as conn:
                conn.execute(models.insert().values(**_row_values(card, key, now)))
                _append(conn, card.model_id, None, "registered", actor, "registered", None, now)
                # the object goes in while the row is uncommitted: a failed put leaves no row
                self.store.put(key, data)
                written = True
                if sha256_of(self.store.get(key)) != card.sha256:
                    raise ModelError(card.model_id, f"the stored copy at {key} does not match")
        except BaseException:
            if written:
                self.store.delete(key)
            raise

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self._engine.connect() as conn:
                yield conn
        except OperationalError as exc:
            raise RegistryUnavailable(f"registry {_safe(self.url)}: {_first(exc)}") from None

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        try:
            with self._engine.begin() as conn:
                yield conn
        except IntegrityError as exc:
            raise ConcurrentTransition(f"refused by the database: {_first(exc)}") from None
        except OperationalError as exc:
            raise RegistryUnavailable(f"registry {_safe(self.url)}: {_first(exc)}") from None
        except SQLAlchemyError as exc:
            raise RegistryError(f"registry {_safe(self.url)}: {_first(exc)}") from None


def _with_canary_score(card: ModelCard, data: bytes, expected: float | None) -> ModelCard:
    """Score the canary with the real scorer; the card keeps what the model answered."""
    from shadow.scorer import OnnxScorer

    with tempfile.TemporaryDirectory(prefix="shadow-register-") as folder:
        path = Path(folder) / "model.onnx"
        path.write_bytes(data)
        actual = OnnxScorer(card, path).score_canary()
    checks.check_canary(card.model_id, actual, expected)
    return card.model_copy(update={"canary_score": actual})


def _locked_row(conn: Connection, model_id: str) -> Any:
    query = select(models).where(models.c.model_id == model_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).one_or_none()
    if row is None:
        raise RegistryError(f"model {model_id} is not registered")
    return row


def _check_move(model_id: str, current: str, to_state: str) -> None:
    allowed = MOVES[current]
    if to_state in allowed:
        return
    moves = ", ".join(allowed) if allowed else f"none ({current} is final)"
    raise RegistryError(
        f"model {model_id} is {current}: it cannot move to {to_state}; allowed moves: {moves}"
    )


def _check_state(state: str) -> None:
    if state not in STATES:
        raise RegistryError(f"unknown state {state!r}; states are {', '.join(STATES)}")


def _check_names(name: str, version: str) -> None:
    for what, value in (("name", name), ("version", version)):
        if not _NAME.match(value):
            raise RegistryError(
                f"model {what} {value!r} must be 1-100 letters, digits, '.', '_' or '-'"
            )


def _retire_production(
    conn: Connection, name: str, model_id: str, actor: str, now: dt.datetime, evidence: str | None
) -> None:
    query = select(models).where(models.c.name == name, models.c.state == "production")
    for old in conn.execute(query).all():
        _compare_and_set(conn, old, "retired", now)
        reason = f"superseded by {model_id}"
        _append(conn, old.model_id, "production", "retired", actor, reason, evidence, now)


def _compare_and_set(conn: Connection, row: Any, to_state: str, now: dt.datetime) -> None:
    result = conn.execute(
        update(models)
        .where(models.c.model_id == row.model_id, models.c.row_version == row.row_version)
        .values(state=to_state, updated_at=now, row_version=row.row_version + 1)
    )
    if result.rowcount != 1:
        raise ConcurrentTransition(
            f"model {row.model_id} changed while it was moving from {row.state} to {to_state}; "
            "re-read it and retry"
        )


def _append(
    conn: Connection,
    model_id: str,
    from_state: str | None,
    to_state: str,
    actor: str,
    reason: str,
    evidence: str | None,
    now: dt.datetime,
) -> Event:
    values = {
        "model_id": model_id,
        "from_state": from_state,
        "to_state": to_state,
        "actor": actor,
        "reason": reason,
        "evidence": evidence,
        "at": now,
    }
    result = conn.execute(events.insert().values(**values))
    return Event(event_id=int(result.inserted_primary_key[0]), **values)


def _row_values(card: ModelCard, key: str, now: dt.datetime) -> dict[str, Any]:
    return {
        "model_id": card.model_id,
        "name": card.name,
        "version": card.version,
        "state": "registered",
        "sha256": card.sha256,
        "object_key": key,
        "card": card.to_json(),
        "created_at": now,
        "updated_at": now,
        "row_version": 1,
    }


def _record(row: Any) -> ModelRecord:
    return ModelRecord(
        card=ModelCard.from_json(row.card),
        state=row.state,
        object_key=row.object_key,
        updated_at=_utc(row.updated_at),
        row_version=row.row_version,
    )


def _event(row: Any) -> Event:
    return Event(
        event_id=row.event_id,
        model_id=row.model_id,
        from_state=row.from_state,
        to_state=row.to_state,
        actor=row.actor,
        reason=row.reason,
        evidence=row.evidence,
        at=_utc(row.at),
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _first(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except SQLAlchemyError:
        return "<registry url>"


__all__ = ["MOVES", "STATES", "Event", "ModelRecord", "ModelRegistry", "split_model_id"]
