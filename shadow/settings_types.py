"""Settings types - the value types of settings that need more than pydantic's own checks.

Each turns a value a user can reasonably write into the one shadow uses, or refuses it with a
message that says what is allowed (the settings loader adds the setting's name).
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator
from pydantic_settings import NoDecode

TOPIC_MAX = 249
_TOPIC_CHARS = re.compile(r"[A-Za-z0-9._-]+")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _names(value: Any) -> Any:
    """A list of names from a list, a JSON list or a comma-separated string (`pan,cvv`)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not a valid JSON list ({exc.msg}); or write `a,b,c`") from None
    return [name.strip() for name in text.split(",") if name.strip()]


NameList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_names)]
"""Feature names: a YAML list, a JSON list or `a,b,c` (also in an environment variable)."""


def _librdkafka_value(value: Any) -> Any:
    """librdkafka takes every property as a string: true/false, numbers as written."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


ClientConfig = dict[str, Annotated[str, BeforeValidator(_librdkafka_value)]]
"""librdkafka properties; numbers and booleans become the strings librdkafka expects."""


def _topic(name: str) -> str:
    """A Kafka topic name as the broker accepts it."""
    if not name:
        raise ValueError("a topic name cannot be empty")
    if name in (".", ".."):
        raise ValueError(f"{name!r} is not a valid topic name")
    if len(name) > TOPIC_MAX:
        raise ValueError(f"a topic name has at most {TOPIC_MAX} characters, this has {len(name)}")
    if not _TOPIC_CHARS.fullmatch(name):
        raise ValueError("a topic name may only contain ASCII letters, digits, '.', '_' and '-'")
    return name


TopicName = Annotated[str, AfterValidator(_topic)]
"""A Kafka topic name: 1-249 of [a-zA-Z0-9._-], not '.' or '..'."""


def check_topic(name: str) -> None:
    """ValueError when `name` is not a valid Kafka topic name (for derived names)."""
    _topic(name)


def _log_level(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    level = value.strip().upper()
    level = "WARNING" if level == "WARN" else level
    if level not in LOG_LEVELS:
        raise ValueError(f"{value!r} is not a log level; use one of {', '.join(LOG_LEVELS)}")
    return level


LogLevel = Annotated[str, BeforeValidator(_log_level)]
"""A logging level name, any case: DEBUG, INFO, WARNING (or WARN), ERROR, CRITICAL."""


def _bootstrap(value: Any) -> Any:
    """host[:port],... with every port a number from 1 to 65535."""
    if not isinstance(value, str) or not value.strip():
        return value
    for item in value.split(","):
        server = item.strip()
        if not server:
            raise ValueError("an empty server in the list (two commas, or one at an end)")
        host, colon, port = server.rpartition(":")
        if not colon or host.endswith(":") or server.endswith("]"):
            continue  # no port (librdkafka's default 9092) or a bare IPv6 address
        if not (port.isdigit() and 1 <= int(port) <= 65535):
            raise ValueError(f"the port of {_no_userinfo(server)!r} is not a number 1-65535")
    return value


def _no_userinfo(server: str) -> str:
    return server.rpartition("@")[2]


BootstrapServers = Annotated[str | None, BeforeValidator(_bootstrap)]
"""Kafka's bootstrap list: host:port,host:port."""


def _http_url(value: Any) -> Any:
    if isinstance(value, str) and not re.match(r"https?://[^/\s]+", value):
        raise ValueError("an S3 endpoint is a URL such as http://127.0.0.1:9000")
    return value


EndpointUrl = Annotated[str | None, BeforeValidator(_http_url)]
"""An http:// or https:// URL."""


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


SecurityProtocol = Annotated[
    Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"], BeforeValidator(_upper)
]
"""librdkafka security.protocol, any case."""
Compression = Annotated[Literal["none", "gzip", "snappy", "lz4", "zstd"], BeforeValidator(_lower)]
"""librdkafka compression.type, any case."""
