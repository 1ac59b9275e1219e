"""What the core leaves to the top floor: the local dev broker as the default brokers, and the
synthetic canary. The core refuses an unset broker and makes a neutral canary from the model."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shadow.app.cli.models import default_canary
from shadow.app.dev_broker import with_dev_broker
from shadow.clients import base_config
from shadow.errors import ConfigError
from shadow.kit.synthetic import FEATURE_NAMES
from shadow.settings import Settings, load_settings
from tests.unit.registry_fixtures import *  # noqa: F403 - registry_url, store, registry, name, tiny


def _settings(home: Path, **kafka: object) -> Settings:
    return load_settings(kafka={"dev_home": str(home), **kafka})


@pytest.fixture
def local_broker(tmp_path: Path) -> Iterator[int]:
    """A running 'local broker' as `shadow dev kafka start` records it: a live pid and a port
    that accepts connections (a listening socket of this process)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        state = tmp_path / "run" / "kafka" / "state.json"
        state.parent.mkdir(parents=True)
        state.write_text(json.dumps({"pid": os.getpid(), "port": port}))
        yield port


def test_the_command_line_uses_the_running_local_broker(tmp_path: Path, local_broker: int) -> None:
    settings = with_dev_broker(_settings(tmp_path))
    assert settings.kafka.bootstrap_servers == f"127.0.0.1:{local_broker}"
    assert base_config(settings.kafka)["bootstrap.servers"] == f"127.0.0.1:{local_broker}"


def test_configured_brokers_win_and_no_local_broker_changes_nothing(
    tmp_path: Path, local_broker: int
) -> None:
    configured = _settings(tmp_path, bootstrap_servers="broker-1:9092")
    assert with_dev_broker(configured) is configured
    nothing = _settings(tmp_path / "elsewhere")
    assert with_dev_broker(nothing) is nothing


def test_the_core_refuses_an_unset_broker_even_when_a_local_one_runs(
    tmp_path: Path, local_broker: int
) -> None:
    with pytest.raises(ConfigError) as caught:
        base_config(_settings(tmp_path).kafka)
    assert caught.value.key == "kafka.bootstrap_servers"
    assert "shadow dev kafka start" in str(caught.value)


def test_the_core_loads_nothing_of_the_kit_or_the_top_floor() -> None:
    code = (
        "import sys; import shadow.clients, shadow.registry, shadow.topics; "
        "print(sorted(m for m in sys.modules if m.startswith(('shadow.kit', 'shadow.app'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_a_registration_without_canary_gets_the_models_inputs_at_neutral_values(
    registry: Any, tiny: Path, name: str
) -> None:
    card = registry.register(tiny, name, "1")
    assert card.canary == {"amount": 0.0, "device_risk": 0.0, "merchant_category": ""}
    assert card.canary_score is not None


def test_the_command_lines_default_canary_is_one_synthetic_transaction() -> None:
    canary = default_canary()
    assert canary == default_canary()  # fixed: the same transaction every time
    assert set(canary) == set(FEATURE_NAMES)
