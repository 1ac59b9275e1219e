"""ModelRegistry - the governance store: model cards, lifecycle states and their history.

The states and moves are in ``shadow.registry_moves`` (``MOVES``); a move to ``passed`` or
``production`` carries a passing gate verdict bound to its evidence file, or is an override
recorded as such. Every change is an append-only event (actor, time, reason, evidence id and
digest, kind). Promoting a model to ``production`` retires the name's previous production model
in the same database transaction; ``rollback`` puts the previous one back, also in one
transaction. A state change is a compare-and-set on ``row_version``: of two concurrent
transitions on one model exactly one wins, the other gets ConcurrentTransition. Notes that change
no state (the worker's "unloaded after N failed batches") are events too, written by
``record_event`` with from_state == to_state. ONNX files live in the object store under
``models/<name>/<version>/model.onnx``.
"""

from __future__ import annotations

import builtins
import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from shadow import registry_checks as checks
from shadow.errors import ConcurrentTransition, ModelError, RegistryError, RegistryUnavailable
from shadow.modelcard import ModelCard, model_id_of, sha256_file, sha256_of, split_model_id
from shadow.objectstore import ObjectStore
from shadow.registry_db import (
    ModelRecord,
    compare_and_set,
    events,
    first_line,
    locked_row,
    models,
    now_utc,
    open_engine,
    record_of,
    row_values,
    safe_url,
)
from shadow.registry_events import (
    Event,
    Proof,
    append_event,
    event_of,
    last_state_changes,
    production_ids,
    retire_production,
)
from shadow.registry_moves import (
    MOVES,
    STATES,
    proof_for,
    resolve_actor,
    roll_back,
    rollback_pair,
)
from shadow.registry_moves import check_move as _check_move
from shadow.registry_moves import check_state as _check_state
from shadow.verdicts import GateEvidence

if TYPE_CHECKING:
    from shadow.settings import Settings

logger = logging.getLogger(__name__)


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
            raise RegistryUnavailable(f"registry {safe_url(url)}: {first_line(exc)}") from None

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
        threshold: float | None = None,
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

        ``threshold`` is the decision threshold; without it the model's ONNX metadata property
        ``threshold`` must carry one (else refused). ``feature_names`` is the list of
        transaction features (every input must be one); ``sha256`` the digest the caller
        expects; ``canary`` defaults to the model's inputs at neutral values (zero, false,
        empty text: ``registry_checks.neutral_canary``), and ``canary_score``,
        when given, must be reproduced within 1e-5.
        """
        model_id = model_id_of(name, version)
        checks.check_names(name, version)
        self._refuse_existing(model_id)
        model, data = checks.read_model_bytes(model_id, Path(path))
        checks.check_sha256(model_id, data, sha256)
        signature = checks.signature_of(model_id, model)
        checks.check_features(model_id, signature, feature_names)
        threshold = checks.threshold_of(model_id, model, threshold)
        card = ModelCard(
            model_id=model_id,
            name=name,
            version=version,
            sha256=sha256_of(data),
            features=signature.features,
            input_kind=signature.input_kind,
            score_output=signature.score_output,
            threshold=threshold,
            canary=dict(canary) if canary is not None else checks.neutral_canary(signature),
            owner=owner,
            description=description,
            training_data=training_data,
        )
        card = checks.with_canary_score(card, data, canary_score)
        self._insert(card, data, resolve_actor(actor))
        logger.info("registered model %s (%s)", model_id, card.sha256[:12])
        return card

    def get(self, model_id: str) -> ModelRecord:
        with self._read() as conn:
            row = conn.execute(select(models).where(models.c.model_id == model_id)).one_or_none()
            if row is None:
                raise RegistryError(f"model {model_id} is not registered")
            entered = last_state_changes(conn, [model_id])
        return replace(record_of(row), entered=entered.get(model_id))

    def list(self, state: str | None = None) -> list[ModelRecord]:
        """The models (in one state), each with the event that put it there."""
        query = select(models).order_by(models.c.name, models.c.created_at, models.c.version)
        if state is not None:
            _check_state(state)
            query = query.where(models.c.state == state)
        with self._read() as conn:
            records = [record_of(row) for row in conn.execute(query)]
            entered = last_state_changes(conn, [r.model_id for r in records])
        return [replace(r, entered=entered.get(r.model_id)) for r in records]

    def shadow_set(self) -> builtins.list[ModelCard]:
        """Exactly the models in state ``shadow``: what the workers must load."""
        return [record.card for record in self.list("shadow")]

    def production(self, name: str) -> ModelRecord | None:
        query = select(models).where(models.c.name == name, models.c.state == "production")
        with self._read() as conn:
            row = conn.execute(query).one_or_none()
        return record_of(row) if row is not None else None

    def history(self, model_id: str) -> builtins.list[Event]:
        self.get(model_id)
        query = select(events).where(events.c.model_id == model_id).order_by(events.c.event_id)
        with self._read() as conn:
            return [event_of(row) for row in conn.execute(query)]

    def transition(
        self,
        model_id: str,
        to_state: str,
        actor: str | None = None,
        reason: str = "",
        evidence: GateEvidence | str | None = None,
        *,
        override: bool = False,
    ) -> Event:
        """Move a model to another state, as one event; RegistryError when the move is illegal.

        A move to ``passed`` or ``production`` needs ``evidence``: a GateEvidence (read with
        ``shadow.verdicts.read_gate_evidence``) that passed this model; the event keeps its
        evidence id and the evidence file's sha256. ``override`` makes the move without it,
        recorded as an override. Other moves may carry an evidence id or verdict as a note.
        """
        _check_state(to_state)
        if not reason.strip():
            raise RegistryError(f"model {model_id}: a transition needs a reason")
        who = resolve_actor(actor)
        with self._write() as conn:
            row = locked_row(conn, model_id)
            seen = production_ids(conn, row.name)  # what this promotion supersedes
            _check_move(model_id, row.state, to_state)
            proof = proof_for(model_id, to_state, evidence, override)
            now = now_utc()
            if to_state == "production":
                retire_production(conn, row.name, model_id, who, now, _passed_on(proof), seen)
            compare_and_set(conn, row, to_state, now)
            event = append_event(conn, model_id, row.state, to_state, who, reason, proof, now)
        logger.info("model %s: %s -> %s by %s (%s)", model_id, row.state, to_state, who, proof.kind)
        return event

    def rollback(
        self, name: str, actor: str | None = None, reason: str = ""
    ) -> builtins.list[Event]:
        """Put back the model that was in production before the current one, in one transaction:
        the current one goes production -> retired, the previous one retired -> production, both
        recorded as kind ``rollback``. Refused (RegistryError / ModelError) when the name has no
        production model, no earlier production model that was not rolled back, or when that
        model's stored file no longer matches its sha256."""
        if not reason.strip():
            raise RegistryError(f"{name}: a rollback needs a reason")
        who = resolve_actor(actor)
        with self._read() as conn:
            current, target = rollback_pair(conn, name)
        self.verify_file(target)
        with self._write() as conn:
            done = roll_back(conn, name, (current, target), who, reason)
        logger.warning("%s: rolled back from %s to %s by %s", name, current, target, who)
        return done

    def verify_file(self, model_id: str) -> None:
        """ModelError unless the stored file still has the card's sha256."""
        record = self.get(model_id)
        if sha256_of(self.store.get(record.object_key)) != record.card.sha256:
            raise ModelError(model_id, f"sha256 mismatch in the store at {record.object_key}")

    def record_event(
        self, model_id: str, actor: str, reason: str, evidence: str | None = None
    ) -> Event:
        """A note in the history that changes no state (e.g. a worker unloading a model)."""
        with self._write() as conn:
            row = locked_row(conn, model_id)
            note = Proof(evidence, kind="note")
            return append_event(
                conn, model_id, row.state, row.state, actor, reason, note, now_utc()
            )

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
        now = now_utc()
        try:
            with self._write() as conn:
                conn.execute(models.insert().values(**row_values(card, key, now)))
                registered = Proof(kind="registered")
                append_event(
                    conn, card.model_id, None, "registered", actor, "registered", registered, now
                )
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
            raise RegistryUnavailable(f"registry {safe_url(self.url)}: {first_line(exc)}") from None

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        try:
            with self._engine.begin() as conn:
                yield conn
        except IntegrityError as exc:
            raise ConcurrentTransition(
                f"refused by the database (a concurrent change won): {first_line(exc)}"
            ) from None
        except OperationalError as exc:
            raise RegistryUnavailable(f"registry {safe_url(self.url)}: {first_line(exc)}") from None
        except SQLAlchemyError as exc:
            raise RegistryError(f"registry {safe_url(self.url)}: {first_line(exc)}") from None


def _passed_on(proof: Proof) -> Proof:
    """What the promotion records on the model it supersedes: its evidence."""
    return Proof(proof.evidence, proof.evidence_sha256, "superseded")


__all__ = [
    "MOVES",
    "STATES",
    "Event",
    "GateEvidence",
    "ModelRecord",
    "ModelRegistry",
    "resolve_actor",
    "split_model_id",
]
