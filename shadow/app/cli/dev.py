"""`shadow dev` - start, inspect and stop the local Kafka broker and S3 API server."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from shadow.app.cli.common import ConfigOption, JsonOption, settings_from

if TYPE_CHECKING:
    from shadow.kit.dev.kafka import LocalKafka
    from shadow.kit.dev.process import ServiceState
    from shadow.kit.dev.s3 import LocalS3

app = typer.Typer(help="Local services for development, tests and the demo.", no_args_is_help=True)
kafka_app = typer.Typer(
    help="A single-node Apache Kafka (KRaft) from the official jars.", no_args_is_help=True
)
s3_app = typer.Typer(help="An S3 API server (moto) on 127.0.0.1.", no_args_is_help=True)
app.add_typer(kafka_app, name="kafka")
app.add_typer(s3_app, name="s3")

PortOption = Annotated[
    int | None, typer.Option("--port", help="Port to listen on (else a free one).")
]


def _kafka(config: Path | None) -> LocalKafka:
    from shadow.kit.dev.kafka import LocalKafka

    settings = settings_from(config)
    return LocalKafka(settings.kafka.dev_version, settings.kafka.dev_home)


def _s3(config: Path | None) -> LocalS3:
    from shadow.kit.dev.s3 import LocalS3

    return LocalS3(settings_from(config).kafka.dev_home)


def _print(state: ServiceState, as_json: bool) -> None:
    if as_json:
        typer.echo(state.to_json())
    elif state.running:
        typer.echo(f"running at {state.bootstrap} (pid {state.pid})")
    else:
        typer.echo("not running")


@kafka_app.command("start")
def kafka_start(
    port: PortOption = None, config: ConfigOption = None, as_json: JsonOption = False
) -> None:
    """Resolve the broker jars (once), format KRaft storage, start, wait until it answers."""
    started = time.monotonic()
    state = _kafka(config).start(port=port)
    if not as_json:
        typer.echo(f"kafka ready in {time.monotonic() - started:.1f}s")
    _print(state, as_json)


@kafka_app.command("status")
def kafka_status(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Whether the local broker runs, and where."""
    _print(_kafka(config).status(), as_json)


@kafka_app.command("stop")
def kafka_stop(config: ConfigOption = None) -> None:
    """Stop the local broker (SIGTERM, then SIGKILL) and remove its state."""
    _kafka(config).stop()
    typer.echo("kafka stopped")


@s3_app.command("start")
def s3_start(
    port: PortOption = None, config: ConfigOption = None, as_json: JsonOption = False
) -> None:
    """Start moto's S3 API server on 127.0.0.1."""
    _print(_s3(config).start(port=port), as_json)


@s3_app.command("status")
def s3_status(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Whether the local S3 API server runs, and its URL."""
    _print(_s3(config).status(), as_json)


@s3_app.command("stop")
def s3_stop(config: ConfigOption = None) -> None:
    """Stop the local S3 API server and remove its state."""
    _s3(config).stop()
    typer.echo("s3 stopped")
