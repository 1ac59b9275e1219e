"""`shadow demo` - the whole pipeline on this machine, end to end."""

from __future__ import annotations

import logging
import signal
from typing import Annotated

import typer

from shadow.app.cli.common import ConfigOption, kafka_settings_from, settings_from


def demo(
    seconds: Annotated[float, typer.Option(help="Seconds of live traffic.", min=1)] = 60.0,
    tps: Annotated[float, typer.Option(help="Live transactions per second.", min=1)] = 1000.0,
    workers: Annotated[int, typer.Option(help="Worker processes in the group.", min=1)] = 2,
    store: Annotated[
        str | None,
        typer.Option(help="s3://bucket/prefix for the datasets (default: ./shadow-data/<run>)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic traffic and models.")] = 7,
    fraud_rate: Annotated[
        float, typer.Option(help="Share of fraudulent transactions.", min=0.0001, max=0.5)
    ] = 0.01,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show INFO logs.")] = False,
    config: ConfigOption = None,
) -> None:
    """Run live traffic through the tap, score candidates in shadow, compare, gate, promote."""
    from rich.console import Console

    from shadow.app.demo.run import DemoOptions, run_demo
    from shadow.app.demo.verdict import verdict_table

    settings = settings_from(config)
    if not verbose:
        for name in ("shadow", "producers", "consumers", "analysis"):
            logging.getLogger(name).setLevel(logging.WARNING)
    console = Console()
    # `kill` (SIGTERM) stops the demo like Ctrl-C: everything it started is stopped
    signal.signal(signal.SIGTERM, _interrupt)
    options = DemoOptions(seconds, tps, workers, seed, store, config, fraud_rate)
    result = run_demo(settings, options, console)
    console.print()  # the live table's last frame may end without a newline
    console.print(verdict_table(result.verdicts, result.promoted))
    t = result.traffic
    console.print(
        f"traffic: {t.get('offered', 0):,} offered, {t.get('sampled', 0):,} sampled, "
        f"{t.get('scored', 0):,} predictions in {t.get('files', 0):,} Parquet objects"
    )
    if result.switch is not None and result.switch.error is None:
        console.print(f"promoted [bold]{result.promoted}[/] to production under live traffic")
        console.print(result.switch.line())
        console.print(result.after)
    elif result.switch is not None:
        console.print(result.switch.line())
    else:
        console.print("no candidate passed the gate: production unchanged")
    console.print(f"report:   {result.paths.get('report')}")
    console.print(f"evidence: {result.paths.get('evidence')}")
    console.print(f"explore:  shadow models list --config {result.run_dir / 'shadow.yaml'}")


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def seed(
    seconds: Annotated[float, typer.Option(help="Seconds of live traffic.", min=1)] = 120.0,
    tps: Annotated[float, typer.Option(help="Live transactions per second.", min=1)] = 200.0,
    seed: Annotated[int, typer.Option(help="Seed of the models and the traffic.")] = 7,
    config: ConfigOption = None,
) -> None:
    """For a running deployment (compose): register the demo models if missing, send traffic,
    write its labels, wait until the workers committed it all. Then run compare and gate."""
    import json

    from shadow.app.demo.seed import seed_traffic

    summary = seed_traffic(kafka_settings_from(config), seconds, tps, seed)
    typer.echo(json.dumps(summary))
