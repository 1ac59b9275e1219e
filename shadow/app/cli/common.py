"""What every subcommand shares: the --config option and loading settings at the edge."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shadow.logs import configure_logging
from shadow.settings import Settings, load_settings

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="YAML settings file (else $SHADOW_CONFIG).", show_default=False
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ActorOption = Annotated[
    str | None,
    typer.Option(
        "--actor",
        help="Who acts, for the history (default: $GITHUB_ACTOR, else user@host).",
        show_default=False,
    ),
]


def settings_from(config: Path | None) -> Settings:
    """Load the settings once, at the edge, and configure logging from them."""
    settings = load_settings(config)
    configure_logging(settings.log)
    return settings


def kafka_settings_from(config: Path | None) -> Settings:
    """settings_from, for a command that talks to Kafka: an unset kafka.bootstrap_servers
    becomes the address of the broker `shadow dev kafka start` runs, when one runs."""
    from shadow.app.dev_broker import with_dev_broker

    return with_dev_broker(settings_from(config))
