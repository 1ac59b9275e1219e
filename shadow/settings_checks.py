"""Settings checks - the one-line errors for a config file, SHADOW__* variables and values.

Each names the setting (and the variable to fix), never a value: a value may be a secret.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import get_origin

from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import NoDecode

from shadow.errors import ConfigError

ENV_PREFIX = "SHADOW__"


def check_environment(environ: Mapping[str, str], sections: Mapping[str, FieldInfo]) -> None:
    """A SHADOW__SECTION__FIELD variable of a map or list setting must hold JSON: name the
    variable that does not (pydantic-settings would only name the section)."""
    for variable, text in environ.items():
        parts = variable.upper().removeprefix(ENV_PREFIX).split("__")
        if not variable.upper().startswith(ENV_PREFIX):
            continue
        if len(parts) == 1 and parts[0].lower() in sections:
            _check_json(variable, text, parts[0].lower(), '\'{"topic": "shadow.transactions"}\'')
        if len(parts) != 2:
            continue
        section = sections.get(parts[0].lower())
        model = section.annotation if section else None
        field = getattr(model, "model_fields", {}).get(parts[1].lower())
        if field is None or not _json_field(field):
            continue
        _check_json(variable, text, f"{parts[0]}.{parts[1]}".lower(), _json_example(field))


def _check_json(variable: str, text: str, key: str, example: str) -> None:
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            key, f"{variable} is not valid JSON ({exc.msg} at column {exc.colno}); e.g. {example}"
        ) from None


def _json_field(field: FieldInfo) -> bool:
    """pydantic-settings decodes these from JSON (a NoDecode list takes `a,b` as well)."""
    origin = get_origin(field.annotation)
    return origin in (dict, list, tuple) and not any(m is NoDecode for m in field.metadata)


def _json_example(field: FieldInfo) -> str:
    if get_origin(field.annotation) is dict:
        return """'{"session.timeout.ms": 45000}'"""
    return """'[{"metric": "error_rate", "op": ">", "threshold": 0.05}]'"""


def check_yaml(path: Path) -> None:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read the config file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(str(path), f"not valid YAML{where}") from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(str(path), "the config file must be a mapping of sections")


def config_error(exc: ValidationError) -> ConfigError:
    first = exc.errors()[0]
    loc = [str(part) for part in first["loc"]]
    # a variable names a section's field; what lies below it (a client_config key, a rule)
    # is inside that variable's JSON, never a variable of its own
    key = ".".join(loc[:2]) or "settings"
    env = ENV_PREFIX + "__".join(part.upper() for part in loc[:2])
    inner = f"{'.'.join(loc[2:])!r}: " if len(loc) > 2 else ""
    message = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        problem = f"{inner}unknown key (check its spelling in the config file or {env})"
    elif len(loc) < 2:
        problem = message
    else:
        problem = f"{inner}{message} (from the config file or {env})"
    more = len(exc.errors()) - 1
    if more:
        problem += f"; and {more} more problem(s)"
    return ConfigError(key, problem)
