"""Settings reference - every setting with its environment name, default and meaning."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

from shadow.settings import ENV_PREFIX, Settings


def reference_rows() -> list[tuple[str, str, str, str]]:
    """(key, environment variable, default, description) for every leaf setting."""
    rows: list[tuple[str, str, str, str]] = []
    for section, field in Settings.model_fields.items():
        model = field.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        defaults = model()
        for name, leaf in model.model_fields.items():
            env = f"{ENV_PREFIX}{section.upper()}__{name.upper()}"
            default = _show(getattr(defaults, name))
            rows.append(
                (f"{section}.{name}", env, default, " ".join((leaf.description or "").split()))
            )
    return rows


def reference_markdown() -> str:
    """The rows as a Markdown table (the README's configuration reference)."""
    lines = ["| setting | environment | default | meaning |", "|---|---|---|---|"]
    for key, env, default, text in reference_rows():
        lines.append(f"| `{key}` | `{env}` | {default} | {text.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def _show(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, SecretStr):
        return "(secret)"
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if isinstance(value, tuple | list):
        value = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
    if isinstance(value, list | dict):
        return f"`{json.dumps(value, default=str)}`"
    if isinstance(value, Path):
        home = str(Path.home())
        text = str(value)
        return f"`~{text[len(home) :]}`" if text.startswith(home) else f"`{text}`"
    if isinstance(value, float):
        return f"`{value:.6g}`"
    return f"`{value}`"
