"""The registry suites of tests/unit (registry, governance, live model) on a real PostgreSQL."""

from __future__ import annotations

import uuid

import pytest

from tests.unit.test_governance import *  # noqa: F403 - the same suites, on another database
from tests.unit.test_live_model import *  # noqa: F403
from tests.unit.test_registry import *  # noqa: F403

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


@pytest.fixture
def registry_url(postgres_url: str) -> str:  # overrides the SQLite URL of the unit suite
    return postgres_url


def test_shared_deployment_postgres_and_s3(postgres_url, s3_store, tmp_path):
    """The registry as a team runs it: PostgreSQL for state, an S3 API for the model files."""
    from shadow.errors import ModelError
    from shadow.kit.reference_models import write_tiny_model
    from shadow.objectstore import open_store
    from shadow.registry import ModelRegistry
    from shadow.settings import StoreSettings

    store = open_store(StoreSettings(**s3_store))
    registry = ModelRegistry(postgres_url, store)
    name = f"s3-{uuid.uuid4().hex[:8]}"
    path = write_tiny_model(tmp_path / "model.onnx", "tensor")
    canary = {"amount": 10.0, "device_risk": 0.3, "ip_risk": 0.1}
    card = registry.register(path, name, "1", threshold=0.5, canary=canary)
    assert store.get(f"models/{name}/1/model.onnx") == path.read_bytes()
    fetched = registry.fetch(card.model_id, tmp_path / "cache")
    assert fetched.read_bytes() == path.read_bytes()
    registry.transition(card.model_id, "shadow", "ci", "start")
    assert card.model_id in {c.model_id for c in registry.shadow_set()}
    store.put(f"models/{name}/1/model.onnx", b"tampered")
    fetched.unlink()
    with pytest.raises(ModelError, match="sha256 mismatch in the store"):
        registry.fetch(card.model_id, tmp_path / "cache")
    registry.close()
