"""The monitor's broker credentials come from the same kafka settings librdkafka uses."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import faust
import pytest

from consumers.monitor.auth import broker_credentials
from shadow.errors import ConfigError
from shadow.settings import KafkaSettings


def _kafka(**values: Any) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers="127.0.0.1:9092", **values)


def test_plaintext_needs_no_credentials() -> None:
    assert broker_credentials(_kafka()) is None


def test_sasl_ssl_with_scram_becomes_sasl_credentials_over_tls() -> None:
    kafka = _kafka(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="svc",
        sasl_password="s3cret",
    )
    credentials = broker_credentials(kafka)
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.username, credentials.password) == ("svc", "s3cret")
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert isinstance(credentials.ssl_context, ssl.SSLContext)
    assert credentials.ssl_context.verify_mode == ssl.CERT_REQUIRED


def test_sasl_plaintext_has_no_tls_and_plain_is_the_default_mechanism() -> None:
    kafka = _kafka(security_protocol="sasl_plaintext", sasl_username="u", sasl_password="p")
    credentials = broker_credentials(kafka)
    assert credentials.ssl_context is None
    assert credentials.mechanism.value == "PLAIN"


def test_ssl_without_verification_when_librdkafka_was_told_so() -> None:
    kafka = _kafka(
        security_protocol="SSL",
        client_config={"enable.ssl.certificate.verification": "false"},
    )
    credentials = broker_credentials(kafka)
    assert isinstance(credentials, faust.SSLCredentials)
    assert credentials.context.verify_mode == ssl.CERT_NONE


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "GSSAPI"}, "kafka.sasl_mechanism"),
        ({"security_protocol": "SASL_PLAINTEXT", "sasl_username": "u"}, "kafka.sasl_username"),
    ],
)
def test_what_aiokafka_cannot_do_is_a_config_error(values: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        broker_credentials(_kafka(**values))
    assert caught.value.key == key


def test_a_missing_ca_file_is_a_config_error(tmp_path: Path) -> None:
    kafka = _kafka(
        security_protocol="SSL", client_config={"ssl.ca.location": str(tmp_path / "none.pem")}
    )
    with pytest.raises(ConfigError) as caught:
        broker_credentials(kafka)
    assert caught.value.key == "kafka.client_config"
    assert "TLS files could not be loaded" in str(caught.value)
