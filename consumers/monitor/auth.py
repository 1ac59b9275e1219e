"""Monitor auth - the kafka settings (librdkafka's names) as Faust/aiokafka broker credentials.

The workers and the tap hand ``kafka.security_protocol``, ``sasl_*`` and ``client_config`` to
librdkafka as they are. The monitor runs on aiokafka, which takes the same facts in other
shapes: SASL user and password with PLAIN or SCRAM, and TLS as an ``ssl.SSLContext`` built
from librdkafka's ``ssl.ca.location`` / ``ssl.certificate.location`` / ``ssl.key.location``.
What aiokafka cannot do from these settings is a one-line ConfigError at startup.
"""

from __future__ import annotations

import ssl
from typing import Any

from shadow.errors import ConfigError
from shadow.settings import KafkaSettings

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def broker_credentials(kafka: KafkaSettings) -> Any | None:
    """faust.SASLCredentials / SSLCredentials for the settings; None for PLAINTEXT."""
    import faust

    protocol = kafka.security_protocol.upper()
    if protocol not in PROTOCOLS:
        raise ConfigError(
            "kafka.security_protocol", f"{kafka.security_protocol!r} is not one of {PROTOCOLS}"
        )
    if protocol == "PLAINTEXT":
        return None
    context = tls_context(kafka.client_config) if protocol.endswith("SSL") else None
    if not protocol.startswith("SASL"):
        return faust.SSLCredentials(context)
    mechanism = (kafka.sasl_mechanism or "PLAIN").upper()
    if mechanism not in MECHANISMS:
        raise ConfigError(
            "kafka.sasl_mechanism",
            f"the monitor (aiokafka) supports {', '.join(MECHANISMS)}, not {mechanism}",
        )
    if not kafka.sasl_username or kafka.sasl_password is None:
        raise ConfigError("kafka.sasl_username", "SASL needs sasl_username and sasl_password")
    return faust.SASLCredentials(
        username=kafka.sasl_username,
        password=kafka.sasl_password.get_secret_value(),
        mechanism=mechanism,
        ssl_context=context,
    )


def tls_context(client_config: dict[str, str]) -> ssl.SSLContext:
    """A verifying TLS context from librdkafka's file settings (system CAs when none is set)."""
    key = "kafka.client_config"
    try:
        context = ssl.create_default_context(cafile=client_config.get("ssl.ca.location"))
        certificate = client_config.get("ssl.certificate.location")
        if certificate:
            context.load_cert_chain(
                certificate,
                client_config.get("ssl.key.location"),
                client_config.get("ssl.key.password"),
            )
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(key, f"TLS files could not be loaded: {exc}") from None
    if client_config.get("enable.ssl.certificate.verification", "true").lower() == "false":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
