"""Settings: YAML file, SHADOW__ variables, validation errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from shadow.errors import ConfigError
from shadow.settings import load_settings, masked_dict


def test_defaults_name_what_the_other_stages_rely_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHADOW_CONFIG", raising=False)
    settings = load_settings()
    assert settings.kafka.topic == "shadow.transactions"
    assert settings.kafka.dlq == "shadow.transactions.dlq"
    assert settings.tap.sample_rate == pytest.approx(1 / 3)
    assert settings.registry.url.startswith("sqlite:///")


def test_yaml_then_environment_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "shadow.yaml"
    config.write_text("kafka:\n  topic: from-file\nworker:\n  flush_records: 7\n")
    monkeypatch.setenv("SHADOW__KAFKA__TOPIC", "from-env")
    settings = load_settings(config)
    assert settings.kafka.topic == "from-env"
    assert settings.worker.flush_records == 7


def test_shadow_config_variable_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "shadow.yaml"
    config.write_text("worker:\n  group_id: from-variable\n")
    monkeypatch.setenv("SHADOW_CONFIG", str(config))
    assert load_settings().worker.group_id == "from-variable"


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(ValueError):
        # type: ignore below: assigning to frozen settings, on purpose
        settings.kafka.topic = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("kafka:\n  topik: x\n", "kafka.topik", "unknown key"),
        ("tap:\n  sample_rate: 2\n", "tap.sample_rate", "less than or equal to 1"),
        ("worker:\n  flush_records: many\n", "worker.flush_records", "valid integer"),
        ("kafka: [\n", "shadow.yaml", "not valid YAML"),
        ("- a\n- b\n", "shadow.yaml", "mapping of sections"),
    ],
)
def test_bad_file_names_the_key_and_the_problem(
    tmp_path: Path, text: str, key: str, words: str
) -> None:
    config = tmp_path / "shadow.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert key in str(caught.value)
    assert words in str(caught.value)
    assert "\n" not in str(caught.value)


def test_unknown_environment_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHADOW__WORKER__FLUSH_RECRODS", "5")
    with pytest.raises(ConfigError, match=r"worker\.flush_recrods: unknown key"):
        load_settings()


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_settings(tmp_path / "nope.yaml")


def test_secrets_are_masked_when_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHADOW__STORE__SECRET_ACCESS_KEY", "very-secret-value")
    shown = masked_dict(load_settings())
    assert "very-secret-value" not in str(shown)
    assert shown["store"]["secret_access_key"] == "**********"
