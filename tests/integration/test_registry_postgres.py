"""The registry suite of tests/unit/test_registry.py, against a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.postgres import running_postgres
from tests.unit.test_registry import *  # noqa: F403 - the same suite, on another database

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with running_postgres() as url:
        yield url


@pytest.fixture
def registry_url(postgres_url: str) -> str:  # overrides the SQLite URL of the unit suite
    return postgres_url
