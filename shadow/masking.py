"""Masking - secrets out of settings that are shown: URL passwords and client-config secrets.

`shadow config show` prints the settings through ``masked``: SecretStr fields are already
``**********``; here the password of every URL (``postgresql+psycopg://user:***@host/db``, an
S3 endpoint, a bootstrap list carrying ``user:password@host``) and every librdkafka property
whose name says it is a secret (password, secret, key, token, credential, e.g.
``ssl.key.password``, ``sasl.oauthbearer.client.secret``) are masked as well.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "**********"
SECRET_WORDS = ("password", "secret", "key", "token", "credential")
"""A client property whose name holds one of these (any case) is masked."""
SECRET_PROPERTIES = frozenset({"sasl.oauthbearer.config", "sasl.jaas.config"})
"""Properties that are free text which may carry secrets (clientSecret=... in them)."""
CLIENT_CONFIGS = frozenset({"client_config", "producer_config", "consumer_config"})

# [scheme://]user:password@ - the password runs to the last '@' of the item (an unescaped '@'
# in a password is masked whole rather than half shown); a list item ends at ',' or a space
_USERINFO = re.compile(r"((?:[A-Za-z][A-Za-z0-9+.\-]*://)?[^\s,:/@]*):(?!//)[^\s,]*@")


def mask_url(text: str) -> str:
    """The text with the password of each URL (or user:password@host item) replaced."""
    return _USERINFO.sub(rf"\1:{MASK}@", text)


def secret_property(name: str) -> bool:
    """True when a librdkafka property's name says its value is a secret."""
    lowered = name.lower()
    return lowered in SECRET_PROPERTIES or any(word in lowered for word in SECRET_WORDS)


def masked(data: Any, parent: str = "") -> Any:
    """Plain settings data (a model_dump) with every secret masked."""
    if isinstance(data, dict):
        if parent in CLIENT_CONFIGS:
            return {k: MASK if secret_property(str(k)) else masked(v) for k, v in data.items()}
        return {k: masked(v, str(k)) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [masked(item) for item in data]
    if isinstance(data, str):
        return mask_url(data)
    return data
