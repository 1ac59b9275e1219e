"""Configuration mistakes through the real CLI: one line naming the setting, exit 2, no
traceback; and what a user can reasonably write (a comma list, numbers in a client config) is
accepted."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
import yaml

from shadow.kit.dev.process import free_port
from shadow.kit.tiny_models import build

SHADOW = [sys.executable, "-c", "from shadow.app.cli import main; main()"]


def shadow(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SHADOW")}
    return subprocess.run(
        [*SHADOW, *args], capture_output=True, text=True, env={**clean, **(env or {})}, check=False
    )


def assert_one_line(
    done: subprocess.CompletedProcess[str], setting: str, code: int = 2, alone: bool = True
) -> None:
    """Exit `code`, no traceback, one error line naming `setting` (the only line on stderr
    unless the command logs its progress before it fails: then the last one)."""
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 or not alone, lines
    assert [line for line in lines if line.startswith("error:")] == lines[-1:]
    assert setting in lines[-1]


MISTAKES = [
    ("SHADOW__LOG__LEVEL", "LOUD", "log.level"),
    ("SHADOW__WORKER__CONSUMER_CONFIG", '{"session.timeout.ms": 6000', "worker.consumer_config"),
    ("SHADOW__KAFKA__CLIENT_CONFIG", "ssl.key.password=x", "kafka.client_config"),
    ("SHADOW__TAP__PRODUCER_CONFIG", "[1, 2", "tap.producer_config"),
    ("SHADOW__MONITOR__RULES", "[{", "monitor.rules"),
    ("SHADOW__KAFKA", '{"topic": ', "setting kafka:"),
    ("SHADOW__TAP__HMAC_FIELDS", '["pan"', "tap.hmac_fields"),
    ("SHADOW__KAFKA__TOPIC", "", "kafka.topic"),
    ("SHADOW__KAFKA__TOPIC", "..", "kafka.topic"),
    ("SHADOW__KAFKA__TOPIC", ".", "kafka.topic"),
    ("SHADOW__KAFKA__TOPIC", "orders/eu", "kafka.topic"),
    ("SHADOW__KAFKA__TOPIC", "t" * 250, "kafka.topic"),
    ("SHADOW__KAFKA__TOPIC", "t" * 247, "kafka.dlq_topic"),  # <topic>.dlq would be too long
    ("SHADOW__KAFKA__DLQ_TOPIC", "..", "kafka.dlq_topic"),
    ("SHADOW__WORKER__PREDICTIONS_TOPIC", "", "worker.predictions_topic"),
    ("SHADOW__WORKER__PREDICTIONS_TOPIC", "preds with space", "worker.predictions_topic"),
    ("SHADOW__TAP__SAMPLE_RATE", "-0.5", "tap.sample_rate"),
    ("SHADOW__TAP__SAMPLE_RATE", "a third", "tap.sample_rate"),
    ("SHADOW__WORKER__HTTP_PORT", "abc", "worker.http_port"),
    ("SHADOW__WORKER__HTTP_PORT", "70000", "worker.http_port"),
    ("SHADOW__KAFKA__BOOTSTRAP_SERVERS", "localhost:abc", "kafka.bootstrap_servers"),
    ("SHADOW__KAFKA__BOOTSTRAP_SERVERS", "a:9092,,b:9092", "kafka.bootstrap_servers"),
    ("SHADOW__STORE__ENDPOINT_URL", "minio:9000", "store.endpoint_url"),
    ("SHADOW__TAP__CARD_GUARD", "yes", "tap.card_guard"),
    ("SHADOW__TAP__COMPRESSION", "zip", "tap.compression"),
    ("SHADOW__KAFKA__SECURITY_PROTOCOL", "KERBEROS", "kafka.security_protocol"),
    ("SHADOW__ANALYSIS__LIVE_THRESHOLD", "2", "analysis.live_threshold"),
    ("SHADOW__WORKER__FLUSH_SECONDS", "-1", "worker.flush_seconds"),
]


@pytest.mark.parametrize(("variable", "value", "setting"), MISTAKES)
def test_each_mistake_is_one_line_naming_the_setting(
    variable: str, value: str, setting: str
) -> None:
    done = shadow("config", "show", env={variable: value})
    assert_one_line(done, setting)
    assert variable in done.stderr or setting == "kafka.dlq_topic"


def test_a_client_config_value_of_the_wrong_type_names_a_variable_that_exists() -> None:
    done = shadow("config", "show", env={"SHADOW__WORKER__CONSUMER_CONFIG": '{"a.b": null}'})
    assert_one_line(done, "worker.consumer_config")
    assert re.search(r"SHADOW__WORKER__CONSUMER_CONFIG\b(?!__)", done.stderr)
    assert "__A.B" not in done.stderr.upper()


def test_comma_lists_numbers_and_booleans_are_accepted(tmp_path: Path) -> None:
    env = {
        "SHADOW__TAP__DROP_FIELDS": "pan, cvv,track2",
        "SHADOW__ANALYSIS__SEGMENT_FEATURES": "merchant_category,country",
        "SHADOW__WORKER__CONSUMER_CONFIG": '{"session.timeout.ms": 45000, "check.crcs": true}',
        "SHADOW__LOG__LEVEL": "debug",
        "SHADOW__KAFKA__SECURITY_PROTOCOL": "sasl_ssl",
    }
    done = shadow("config", "show", env=env)
    assert done.returncode == 0, done.stderr
    shown = yaml.safe_load(done.stdout)
    assert shown["tap"]["drop_fields"] == ["pan", "cvv", "track2"]
    assert shown["analysis"]["segment_features"] == ["merchant_category", "country"]
    consumer = shown["worker"]["consumer_config"]
    assert consumer == {"session.timeout.ms": "45000", "check.crcs": "true"}
    assert shown["log"]["level"] == "DEBUG"
    assert shown["kafka"]["security_protocol"] == "SASL_SSL"
    config = tmp_path / "c.yaml"
    config.write_text(
        "tap:\n  drop_fields: pan,cvv\nworker:\n  consumer_config:\n    fetch.min.bytes: 1\n"
    )
    shown = yaml.safe_load(shadow("config", "show", "--config", str(config)).stdout)
    assert shown["tap"]["drop_fields"] == ["pan", "cvv"]
    assert shown["worker"]["consumer_config"] == {"fetch.min.bytes": "1"}


def _down() -> dict[str, str]:
    return {"SHADOW__KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}"}


def test_card_guard_hash_without_a_key_stops_the_tap_at_start() -> None:
    env = {**_down(), "SHADOW__TAP__CARD_GUARD": "hash"}
    done = shadow("tap", "synthetic", "--tps", "1", "--seconds", "1", env=env)
    assert_one_line(done, "setting tap.hmac_key:", alone=False)


def test_a_producer_property_librdkafka_refuses_names_the_setting_and_hides_secrets() -> None:
    config = json.dumps({"linger.ms": "soon", "ssl.key.password": "pw-do-not-print"})
    env = {**_down(), "SHADOW__TAP__PRODUCER_CONFIG": config}
    done = shadow("tap", "synthetic", "--tps", "1", "--seconds", "1", env=env)
    assert_one_line(done, "setting tap.producer_config:", alone=False)
    assert "pw-do-not-print" not in done.stderr


def test_a_consumer_property_librdkafka_refuses_is_a_config_error() -> None:
    from consumers.kafka import make_consumer
    from shadow.errors import ConfigError
    from shadow.settings import load_settings

    settings = load_settings(
        kafka={"bootstrap_servers": "127.0.0.1:9", "client_config": {"ssl.key.password": "pw"}},
        worker={"consumer_config": {"session.timeout.mss": 1}},
    )
    with pytest.raises(ConfigError) as caught:
        make_consumer(settings, "w-1")
    assert caught.value.key == "worker.consumer_config"
    assert "pw" not in str(caught.value).replace("password", "")


@pytest.mark.parametrize(
    "order", ["[[1],[2],[3]]", '["amount", 2]', "[1", '{"a": 1}', '["amount", ""]']
)
def test_a_tensor_model_with_a_bad_feature_order_is_one_line(tmp_path: Path, order: str) -> None:
    model = build("tensor")
    for prop in model.metadata_props:
        if prop.key == "features":
            prop.value = order
    path = tmp_path / "model.onnx"
    onnx.save(model, str(path))
    env = {
        "SHADOW__REGISTRY__URL": f"sqlite:///{tmp_path}/registry.db",
        "SHADOW__STORE__URI": str(tmp_path / "store"),
    }
    done = shadow("models", "register", str(path), "--name", "f", "--version", "1", env=env)
    # a model registration refuses is exit 1, as every other refused model (README: Governance)
    assert_one_line(done, "metadata 'features'", code=1)


@pytest.mark.parametrize(
    "url", ["postgres://u:pw-do-not-print@h/db", "mysql+nosuch://u:pw-do-not-print@h/db"]
)
def test_a_registry_url_without_a_driver_is_one_line(tmp_path: Path, url: str) -> None:
    env = {"SHADOW__REGISTRY__URL": url, "SHADOW__STORE__URI": str(tmp_path)}
    done = shadow("models", "list", env=env)
    assert_one_line(done, "setting registry.url:")
    assert "pw-do-not-print" not in done.stderr
