"""The `shadow` command: one entry point, a thin module per subcommand group."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from shadow.app.cli import analysis as analysis_cmd
from shadow.app.cli import config as config_cmd
from shadow.app.cli import demo as demo_cmd
from shadow.app.cli import dev as dev_cmd
from shadow.app.cli import models as models_cmd
from shadow.app.cli import monitor as monitor_cmd
from shadow.app.cli import tap as tap_cmd
from shadow.app.cli import topics as topics_cmd
from shadow.app.cli import worker as worker_cmd
from shadow.errors import ShadowError

app = typer.Typer(
    name="shadow",
    help="Shadow scoring: mirror live traffic, score candidates in the dark, gate promotion.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(config_cmd.app, name="config")
app.command("demo")(demo_cmd.demo)
app.command("demo-seed")(demo_cmd.seed)
analysis_cmd.register(app)
app.add_typer(dev_cmd.app, name="dev")
app.add_typer(models_cmd.app, name="models")
app.add_typer(tap_cmd.app, name="tap")
app.add_typer(topics_cmd.app, name="topics")
app.command("monitor")(monitor_cmd.monitor)
app.command("worker")(worker_cmd.worker)


def _print_version(value: bool) -> None:
    if value:
        from shadow.__main__ import version

        typer.echo(f"shadow {version()}")
        raise typer.Exit()


@app.callback()
def _root(
    _version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Shadow scoring: mirror live traffic, score candidates in the dark, gate promotion."""


def main() -> None:
    """Console entry point: expected failures print one line and exit with their code."""
    try:
        app()
    except ShadowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except ModuleNotFoundError as exc:
        from shadow.extras import missing_extra

        hint = missing_extra(exc)
        if hint is None:
            raise
        print(f"error: {hint}", file=sys.stderr)
        sys.exit(hint.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
