"""Fixtures of the registry suites (registry, governance, live model), on SQLite by default.

tests/integration/test_registry_postgres.py runs the same suites on PostgreSQL by overriding
``registry_url``; model names are unique per test because that database is shared.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shadow.kit.reference_models import write_tiny_model
from shadow.objectstore import LocalStore
from shadow.registry import ModelRegistry

__all__ = ["CANARY", "name", "registry", "registry_url", "store", "tiny"]

CANARY = {"amount": 120.0, "device_risk": 0.4, "ip_risk": 0.1, "merchant_category": "7995"}


@pytest.fixture
def registry_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/registry.db"


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


@pytest.fixture
def registry(registry_url: str, store: LocalStore) -> Iterator[ModelRegistry]:
    made = ModelRegistry(registry_url, store)
    yield made
    made.close()


@pytest.fixture
def name() -> str:
    """A model name unique to the test (the PostgreSQL suite shares one database)."""
    return f"fraud-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return write_tiny_model(tmp_path / "m" / "model.onnx", "columns")
