"""`shadow config show` masks every secret: SecretStr fields, URL passwords, client secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from shadow.masking import MASK, mask_url, secret_property

SHADOW = [sys.executable, "-c", "from shadow.app.cli import main; main()"]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql+psycopg://shadow:hunter2@db/shadow",
            f"postgresql+psycopg://shadow:{MASK}@db/shadow",
        ),
        ("postgresql://u:p@ss:w/rd@db:5432/x", f"postgresql://u:{MASK}@db:5432/x"),
        ("http://ak:sk@minio:9000", f"http://ak:{MASK}@minio:9000"),
        ("user:pw@broker-1:9093,broker-2:9093", f"user:{MASK}@broker-1:9093,broker-2:9093"),
        ("sqlite:///shadow-data/registry.db", "sqlite:///shadow-data/registry.db"),
        ("broker-1:9092,broker-2:9092", "broker-1:9092,broker-2:9092"),
        ("s3://bucket/prefix", "s3://bucket/prefix"),
        ("postgresql+psycopg://shadow@db/shadow", "postgresql+psycopg://shadow@db/shadow"),
    ],
)
def test_url_passwords_are_masked(url: str, shown: str) -> None:
    assert mask_url(url) == shown


@pytest.mark.parametrize(
    "name",
    [
        "ssl.key.password",
        "sasl.oauthbearer.client.secret",
        "ssl.key.pem",
        "SASL.PASSWORD",
        "sasl.oauthbearer.config",
        "ssl.keystore.password",
    ],
)
def test_secret_properties(name: str) -> None:
    assert secret_property(name)


def test_ordinary_properties_are_shown() -> None:
    assert not any(map(secret_property, ["session.timeout.ms", "ssl.ca.location", "acks"]))


def test_config_show_prints_no_secret() -> None:
    secrets = {
        "SHADOW__REGISTRY__URL": "postgresql+psycopg://shadow:reg-secret-1@db/shadow",
        "SHADOW__STORE__ENDPOINT_URL": "http://ak:s3-secret-2@minio:9000",
        "SHADOW__KAFKA__BOOTSTRAP_SERVERS": "user:boot-secret-3@b1:9093,b2:9093",
        "SHADOW__KAFKA__CLIENT_CONFIG": json.dumps(
            {"ssl.key.password": "kafka-secret-4", "sasl.oauthbearer.client.secret": "oidc-5"}
        ),
        "SHADOW__TAP__PRODUCER_CONFIG": json.dumps({"ssl.key.pem": "pem-secret-6"}),
        "SHADOW__WORKER__CONSUMER_CONFIG": json.dumps({"sasl.password": "sasl-secret-7"}),
        "SHADOW__KAFKA__SASL_PASSWORD": "sasl-secret-8",
        "SHADOW__TAP__HMAC_KEY": "hmac-secret-9",
        "SHADOW__STORE__SECRET_ACCESS_KEY": "aws-secret-10",
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHADOW")}
    done = subprocess.run(
        [*SHADOW, "config", "show"], env={**env, **secrets}, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    for secret in ("reg-secret-1", "s3-secret-2", "boot-secret-3", "kafka-secret-4", "oidc-5",
                   "pem-secret-6", "sasl-secret-7", "sasl-secret-8", "hmac-secret-9",
                   "aws-secret-10"):  # fmt: skip
        assert secret not in done.stdout + done.stderr
    assert "postgresql+psycopg://shadow:" in done.stdout and "@db/shadow" in done.stdout
    assert "ssl.key.password" in done.stdout
