"""Registry tables - models with their current state, and the append-only transition events.

SQLAlchemy Core on any database it speaks; SQLite file by default, PostgreSQL for a shared
deployment. ``row_version`` makes every state change an optimistic compare-and-set, and a partial
unique index keeps one ``production`` model per name even if two promotions race.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
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
    text,
)
from sqlalchemy.engine import make_url

from shadow.errors import ConfigError

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
)
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
    engine = create_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    metadata.create_all(engine)
    return engine


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()
