"""`shadow config` - show the effective settings."""

from __future__ import annotations

import typer

from shadow.app.cli.common import ConfigOption, settings_from

app = typer.Typer(help="Inspect the effective settings.", no_args_is_help=True)


@app.command("show")
def show(config: ConfigOption = None) -> None:
    """Print the effective settings as YAML, secrets masked."""
    import yaml

    from shadow.settings import masked_dict

    settings = settings_from(config)
    typer.echo(yaml.safe_dump(masked_dict(settings), sort_keys=False), nl=False)


@app.command("reference")
def reference() -> None:
    """Print every setting with its environment name, default and meaning (Markdown)."""
    from shadow.settings_reference import reference_markdown

    typer.echo(reference_markdown(), nl=False)
