"""compose/: every SHADOW__ variable the compose file sets is a setting shadow accepts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shadow.settings import ENV_PREFIX, load_settings

COMPOSE = Path(__file__).parents[2] / "compose" / "docker-compose.yml"


def shadow_variables() -> dict[str, str]:
    spec = yaml.safe_load(COMPOSE.read_text())
    found: dict[str, str] = {}
    for service in spec["services"].values():
        environment = service.get("environment") or {}
        found.update({k: str(v) for k, v in environment.items() if k.startswith(ENV_PREFIX)})
    return found


def test_compose_sets_shadow_variables_for_the_workers() -> None:
    names = shadow_variables()
    assert "SHADOW__KAFKA__BOOTSTRAP_SERVERS" in names
    assert "SHADOW__STORE__URI" in names


def test_every_compose_variable_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    variables = shadow_variables()
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.kafka.bootstrap_servers == variables["SHADOW__KAFKA__BOOTSTRAP_SERVERS"]
    assert settings.store.endpoint_url == variables["SHADOW__STORE__ENDPOINT_URL"]
    assert settings.store.secret_access_key is not None
    assert settings.worker.http_port == int(variables["SHADOW__WORKER__HTTP_PORT"])
