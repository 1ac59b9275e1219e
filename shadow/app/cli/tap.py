"""`shadow tap` - mirror a file of past transactions, or synthetic live traffic, onto the topic."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from shadow.app.cli.common import ConfigOption, JsonOption, kafka_settings_from
from shadow.app.cli.tap_outcome import HeldBack, check_delivery
from shadow.errors import UsageError
from shadow.settings import Settings
from shadow.topics import wait_for_broker

app = typer.Typer(help="Mirror transactions onto the shadow topic.", no_args_is_help=True)

TRAFFIC_SEED = 101
"""Default seed of synthetic traffic: not the reference models' training seed, so the live
model scores transactions it was not trained on."""

MaxFailedOption = Annotated[
    float,
    typer.Option(
        "--max-failed",
        help="Exit 1 when more than this share of the sampled transactions is not delivered "
        "(failed, dropped or rejected); a run that delivers nothing always exits 1.",
    ),
]
BROKER_WAIT_S = 10.0
"""How long a tap run waits for a broker to answer before it starts (else: one line, exit 1)."""

SampleRateOption = Annotated[
    float | None,
    typer.Option(
        "--sample-rate", help="Share mirrored (else tap.sample_rate).", show_default=False
    ),
]


def parse_rate(text: str | None) -> float | None:
    """'500/s' or '500' -> 500.0; None or '0' -> no limit."""
    if not text:
        return None
    number = text.strip().lower().removesuffix("/s")
    try:
        rate = float(number)
    except ValueError:
        raise UsageError(f"--rate-limit {text!r}: expected rows per second, e.g. 500/s") from None
    if rate < 0:
        raise UsageError(f"--rate-limit {text!r} must not be negative")
    return rate or None


def with_sample_rate(settings: Settings, rate: float | None) -> Settings:
    if rate is None:
        return settings
    if not 0.0 <= rate <= 1.0:
        raise UsageError(f"--sample-rate {rate} is outside [0, 1]")
    tap = settings.tap.model_copy(update={"sample_rate": rate})
    return settings.model_copy(update={"tap": tap})


def _progress() -> Any:
    """A progress bar on stderr, so --json output on stdout stays one clean line."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )


def _print_summary(title: str, summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(summary))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_header=False)
    for name, value in summary.items():
        table.add_row(name, str(value))
    Console().print(table)


@app.command("replay")
def replay_cmd(
    file: Annotated[Path, typer.Argument(help="Parquet, CSV or JSON Lines file.")],
    rate_limit: Annotated[
        str | None, typer.Option("--rate-limit", help="At most N rows per second, e.g. 500/s.")
    ] = None,
    sample_rate: SampleRateOption = None,
    txn_id: Annotated[str, typer.Option("--txn-id-column")] = "txn_id",
    event_time: Annotated[
        str, typer.Option("--event-time-column", help="Missing column: now.")
    ] = "event_time",
    live_score: Annotated[str, typer.Option("--live-score-column")] = "live_score",
    live_model_id: Annotated[
        str, typer.Option("--live-model-id", help="Live model id for every row.")
    ] = "live@replay",
    model_id_column: Annotated[
        str | None, typer.Option("--model-id-column", help="Column with the live model id.")
    ] = None,
    decision: Annotated[str | None, typer.Option("--decision-column")] = None,
    latency: Annotated[str | None, typer.Option("--latency-ms-column")] = None,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", help="Column not sent as a feature.")
    ] = None,
    string_columns: Annotated[
        list[str] | None, typer.Option("--string-column", help="CSV column kept as text.")
    ] = None,
    max_failed: MaxFailedOption = 0.0,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Mirror past transactions through the tap's sampling, redaction and encoding.

    Exits 1 (one line saying why) when nothing was delivered or more than --max-failed was lost.
    """
    from producers.replay import ColumnMap, count_rows, replay
    from producers.tap import ShadowTap

    columns = ColumnMap(
        txn_id=txn_id,
        event_time=event_time,
        live_score=live_score,
        model_id=live_model_id,
        model_id_column=model_id_column,
        decision=decision,
        latency_ms=latency,
        exclude=tuple(exclude or ()),
        string_columns=tuple(string_columns or ()),
    )
    limit = parse_rate(rate_limit)
    total = count_rows(file)
    settings = with_sample_rate(kafka_settings_from(config), sample_rate)
    # the hand-off tap whatever tap.inline says: replay waits for room in its queue (a
    # slower replay, nothing dropped); tap.inline is about a live service's request path
    # the tap first: a setting it refuses is named before any broker is waited for
    with HeldBack() as held, ShadowTap(settings) as tap, _progress() as bar:
        wait_for_broker(settings.kafka, BROKER_WAIT_S)
        task = bar.add_task(f"replay {file.name}", total=total)
        progress = lambda done: bar.update(task, completed=done)  # noqa: E731
        summary = replay(file, tap, columns, limit, progress)
        tap.close(30)
        stats = tap.stats()
    problems = [f"row {number}: {problem}" for number, problem in summary.problems]
    result: dict[str, Any] = {"rows": summary.rows, "malformed": summary.malformed, **stats}
    result |= {"seconds": round(summary.seconds, 2), "first_problems": problems}
    _print_summary(f"replay of {file.name}", result, as_json)
    _finish(settings.kafka.topic, stats, max_failed, held)


@app.command("synthetic")
def synthetic_cmd(
    tps: Annotated[float, typer.Option("--tps", help="Transactions per second.")] = 200,
    seconds: Annotated[float, typer.Option("--seconds", help="How long to run.")] = 10,
    live_model: Annotated[
        Path | None,
        typer.Option("--live-model", help="Live ONNX model (else the reference lr model)."),
    ] = None,
    live_model_id: Annotated[str | None, typer.Option("--live-model-id")] = None,
    seed: Annotated[
        int, typer.Option("--seed", help="Traffic seed (not the reference models' seed 7).")
    ] = TRAFFIC_SEED,
    threshold: Annotated[float, typer.Option("--threshold", help="Live alert threshold.")] = 0.5,
    micro_batch: Annotated[int, typer.Option("--micro-batch", help="Rows per live call.")] = 1,
    labels_out: Annotated[
        bool, typer.Option("--labels-out", help="Write the labels to the store's labels/.")
    ] = False,
    sample_rate: SampleRateOption = None,
    max_failed: MaxFailedOption = 0.01,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Stand in for the live service: generate, score with the live model, offer to the tap.

    Exits 1 (one line saying why) when nothing was delivered or more than --max-failed was lost.
    """
    from producers.tap import open_tap
    from shadow.kit.live_service import SyntheticLiveService

    if tps <= 0 or seconds <= 0:
        raise UsageError("--tps and --seconds must be positive")
    settings = with_sample_rate(kafka_settings_from(config), sample_rate)
    if live_model is None:
        from shadow.kit.reference_models import build_reference_models

        live_model = build_reference_models()["lr"].path
        live_model_id = live_model_id or "lr@ref"
    if not live_model.is_file():
        raise UsageError(f"--live-model {live_model}: no such file")
    model_id = live_model_id or f"{live_model.stem}@live"
    if "@" not in model_id.strip("@"):
        raise UsageError(f"--live-model-id {model_id!r}: expected name@version")
    total = max(1, round(tps * seconds))
    with HeldBack() as held:
        tap = open_tap(settings)  # first: a setting it refuses is named before any broker wait
        try:
            wait_for_broker(settings.kafka, BROKER_WAIT_S)
            args = (settings, live_model, model_id, seed, threshold, micro_batch)
            service = SyntheticLiveService(*args, tap=tap)
            with _progress() as bar:
                task = bar.add_task("live traffic", total=total)
                run = service.run(tps, seconds, lambda done, _: bar.update(task, completed=done))
        finally:
            tap.close(30)
        run.tap = tap.stats()  # after close: every record delivered or failed
    summary = run.summary()
    if labels_out:
        from shadow.objectstore import open_store

        summary["labels_key"] = service.write_labels(open_store(settings.store))
    _print_summary("synthetic live traffic", summary, as_json)
    _finish(settings.kafka.topic, summary, max_failed, held)


def _finish(topic: str, stats: dict[str, Any], max_failed: float, held: HeldBack) -> None:
    """Exit 1 with one line when the run lost too much; else one line of held-back warnings."""
    if not 0.0 <= max_failed <= 1.0:
        raise UsageError(f"--max-failed {max_failed} is outside [0, 1]")
    check_delivery(topic, stats, max_failed, held)
    if held.count:
        typer.echo(held.summary(), err=True)


@app.command("from-topic")
def from_topic_cmd(
    topic: Annotated[
        str | None, typer.Option("--topic", help="Source topic (else source.topic).")
    ] = None,
    decisions_topic: Annotated[
        str | None,
        typer.Option("--decisions-topic", help="Live decisions topic to join (else source.*)."),
    ] = None,
    mapping: Annotated[
        Path | None, typer.Option("--mapping", help="YAML field mapping (else source.mapping).")
    ] = None,
    idle_exit: Annotated[
        float,
        typer.Option("--idle-exit", help="Stop after this many seconds without records (0: run)."),
    ] = 0.0,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Mirror a live service's own topic of scored transactions, exactly once."""
    from producers.topic_mapping import load_mapping
    from producers.topic_source import TopicSource
    from shadow.settings_types import check_topic

    for option, name in (("--topic", topic), ("--decisions-topic", decisions_topic)):
        try:
            if name is not None:
                check_topic(name)
        except ValueError as exc:
            raise UsageError(f"{option} {name!r}: {exc}") from None
    settings = kafka_settings_from(config)
    updates = {"topic": topic, "decisions_topic": decisions_topic, "mapping": mapping}
    source = settings.source.model_copy(update={k: v for k, v in updates.items() if v})
    if not source.topic:
        raise UsageError("no source topic: give --topic or set source.topic")
    if source.mapping is None:
        raise UsageError("no mapping: give --mapping FILE or set source.mapping")
    spec = load_mapping(source.mapping, joined=source.decisions_topic is not None)
    runner = TopicSource(settings.model_copy(update={"source": source}), spec)
    runner.install_signal_handlers()
    stats = runner.run(idle_exit)
    _print_summary(f"from-topic {source.topic}", stats, as_json)
