"""Registry tables - models with their state, append-only events, and the statements on them.

SQLAlchemy Core on any database it speaks; SQLite file by default, PostgreSQL for a shared
deployment. ``row_version`` makes every state change an optimistic compare-and-set, and a partial
unique index keeps one ``production`` model per name even if two promotions race.

Registries made before the events' ``kind`` and ``evidence_sha256`` columns existed get them
added when they are opened (shadow.registry_events reads their old rows).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    IntegrityError,
    NoSuchModuleError,
    OperationalError,
    ProgrammingError,
    SQLAlchemyError,
)

from shadow.errors import ConcurrentTransition, ConfigError, RegistryError
from shadow.modelcard import ModelCard

if TYPE_CHECKING:
    from shadow.registry_events import Event

metadata = MetaData()

models = Table(
    "shadow_models",
    metadata,
    Column("model_id", String(300), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("version", String(100), nullable=False),
    Column("state", String(20), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("object_key", String(600), nullable=False),
    Column("card", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("row_version", Integer, nullable=False, default=1),
)

Index(
    "shadow_models_one_production",
    models.c.name,
    unique=True,
    sqlite_where=text("state = 'production'"),
    postgresql_where=text("state = 'production'"),
)
Index("shadow_models_state", models.c.state)

events = Table(
    "shadow_model_events",
    metadata,
    Column("event_id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", String(300), ForeignKey("shadow_models.model_id"), nullable=False),
    Column("from_state", String(20)),
    Column("to_state", String(20), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("evidence", Text),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("kind", String(20)),
    Column("evidence_sha256", String(64)),
)
ADDED_COLUMNS = ("kind", "evidence_sha256")
"""Event columns added after the first release: a registry without them gets them on open."""
Index("shadow_model_events_model", events.c.model_id, events.c.event_id)


def open_engine(url: str) -> Engine:
    """An engine for the registry URL with the tables created; SQLite folders made as needed."""
    try:
        parsed = make_url(url)
    except Exception as exc:  # noqa: BLE001 - sqlalchemy's ArgumentError and friends
        raise ConfigError("registry.url", f"not a database URL: {exc}") from None
    kwargs: dict[str, Any] = {"future": True}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(url, **kwargs)
    except (NoSuchModuleError, ImportError):  # an unknown dialect, or its driver not installed
        raise ConfigError(
            "registry.url",
            f"no database driver for {parsed.drivername!r}: use sqlite:///PATH or "
            "postgresql+psycopg://USER:PASSWORD@HOST/DB (pip install 'shadow-scoring[postgres]')",
        ) from None
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    _create_tables(engine)
    _add_columns(engine)
    return engine


def _create_tables(engine: Engine) -> None:
    """Create the tables if missing; a second process creating them at the same time is fine."""
    for attempt in range(5):
        try:
            metadata.create_all(engine)
            return
        except (IntegrityError, ProgrammingError, OperationalError) as exc:
            # another process created a table between the check and the CREATE (SQLite says
            # "already exists", PostgreSQL a duplicate), or SQLite refused the lock upgrade
            # of two racing schema writers at once ("locked"): the next try finds it made
            message = str(exc).lower()
            if attempt == 4 or not any(w in message for w in ("exist", "duplicate", "locked")):
                raise
            time.sleep(0.05 * (attempt + 1))


def _add_columns(engine: Engine) -> None:
    """ALTER TABLE for the event columns an older registry lacks (nullable: old rows keep NULL)."""
    for name in ADDED_COLUMNS:
        if name in _event_columns(engine):
            continue
        column = events.c[name]
        kind = column.type.compile(dialect=engine.dialect)
        try:
            with engine.begin() as conn:
                conn.execute(text(f"ALTER TABLE {events.name} ADD COLUMN {name} {kind}"))
        except (OperationalError, ProgrammingError):
            # another process added it first
            if name not in _event_columns(engine):
                raise


def _event_columns(engine: Engine) -> set[str]:
    return {column["name"] for column in inspect(engine).get_columns(events.name)}


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


@dataclass(frozen=True)
class ModelRecord:
    """A registered model: its card, its current state and where its file is."""

    card: ModelCard
    state: str
    object_key: str
    updated_at: dt.datetime
    row_version: int
    entered: Event | None = None
    """The event that put the model in its current state (shows an override or a rollback)."""

    @property
    def model_id(self) -> str:
        return self.card.model_id


def locked_row(conn: Connection, model_id: str) -> Any:
    query = select(models).where(models.c.model_id == model_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).one_or_none()
    if row is None:
        raise RegistryError(f"model {model_id} is not registered")
    return row


def compare_and_set(conn: Connection, row: Any, to_state: str, now: dt.datetime) -> None:
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


def row_values(card: ModelCard, key: str, now: dt.datetime) -> dict[str, Any]:
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


def record_of(row: Any) -> ModelRecord:
    return ModelRecord(
        card=ModelCard.from_json(row.card),
        state=row.state,
        object_key=row.object_key,
        updated_at=as_utc(row.updated_at),
        row_version=row.row_version,
    )


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def as_utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def first_line(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except SQLAlchemyError:
        return "<registry url>"
