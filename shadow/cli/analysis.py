"""`shadow compare | gate | promote` - compare candidates with live, apply a policy, promote."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from shadow.cli.common import ActorOption, ConfigOption, JsonOption, settings_from

if TYPE_CHECKING:
    from analysis.policy import GateVerdict

PolicyOption = Annotated[
    Path | None,
    typer.Option("--policy", "-p", help="YAML policy (default: the packaged default policy)."),
]
EvidenceOption = Annotated[
    Path, typer.Option("--evidence", "-e", help="evidence.json written by `shadow compare`.")
]


def register(app: typer.Typer) -> None:
    """Add the three commands at the top level of `shadow`."""
    app.command("compare")(compare)
    app.command("gate")(gate)
    app.command("promote")(promote)


def compare(
    window: Annotated[
        str, typer.Option("--window", "-w", help="START..END (ISO), a day, or a span like 24h.")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for evidence and reports.")],
    candidate: Annotated[
        list[str] | None,
        typer.Option("--candidate", help="Candidate model_id (repeat); default: all in window."),
    ] = None,
    live_threshold: Annotated[
        float | None,
        typer.Option(help="Live decision threshold; default: the registry card's, else 0.5."),
    ] = None,
    skip_corrupt: Annotated[
        bool,
        typer.Option(help="Leave out objects that are not readable Parquet, and count them."),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Compare candidates with live over a window: evidence.json, summary.md, report.html."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from analysis.run import run_comparison
    from analysis.window import parse_window

    settings = settings_from(config)
    start, end = parse_window(window)
    console = Console(stderr=True)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("starting", total=None)
        evidence, paths = run_comparison(
            settings,
            start,
            end,
            candidate or None,
            out,
            threshold=live_threshold,
            progress=lambda step: progress.update(task, description=step),
            skip_corrupt=skip_corrupt,
        )
    console.print(
        f"{evidence['transactions']:,} sampled transactions, "
        f"{len(evidence['candidates'])} candidate(s), evidence {evidence['evidence_id']}"
    )
    for skipped in evidence.get("skipped_objects", []):
        console.print(f"left out {skipped['key']}: not readable Parquet ({skipped['problem']})")
    for name, path in paths.items():
        typer.echo(f"{name}: {path}")


def gate(
    evidence: Annotated[
        Path | None,
        typer.Option("--evidence", "-e", help="evidence.json written by `shadow compare`."),
    ] = None,
    policy: PolicyOption = None,
    candidate: Annotated[
        list[str] | None, typer.Option("--candidate", help="Judge only these candidates.")
    ] = None,
    as_json: JsonOption = False,
    list_metrics: Annotated[
        bool, typer.Option("--list-metrics", help="Print the metric names a policy may use.")
    ] = False,
) -> None:
    """Apply a policy to evidence: exit 0 pass, 1 fail, 2 unusable input; write verdict.json."""
    from analysis.evidence import load_evidence, metric_names
    from analysis.gate import evaluate_all, exit_code
    from analysis.policy import default_policy_path, load_policy
    from shadow.errors import UsageError
    from shadow.verdicts import record_verdicts

    if list_metrics:
        typer.echo("\n".join(sorted(metric_names())))
        return
    if evidence is None:
        raise UsageError("--evidence is required (the evidence.json of `shadow compare`)")
    rules = load_policy(policy)
    verdicts = evaluate_all(rules, load_evidence(evidence), candidate or None)
    record_verdicts(evidence, verdicts, policy or default_policy_path())  # verdict.json
    _show(verdicts, as_json)
    raise typer.Exit(exit_code(verdicts))


def promote(
    model_id: Annotated[str, typer.Argument(help="Candidate model_id (name@version).")],
    evidence: EvidenceOption,
    policy: PolicyOption = None,
    to: Annotated[
        str | None,
        typer.Option("--to", help="`production` to promote a passed model; default: the verdict."),
    ] = None,
    actor: ActorOption = None,
    config: ConfigOption = None,
) -> None:
    """Run the gate for one model and record the registry transition, bound to the evidence."""
    from analysis.promote import promote_model

    settings = settings_from(config)
    verdict, event = promote_model(
        settings,
        model_id,
        evidence,
        policy,
        to_production=to == "production",
        actor=actor,
        target=to,
    )
    _show([verdict], False)
    if event is not None:
        typer.echo(f"{model_id}: {event.from_state} -> {event.to_state} ({verdict.evidence_id})")
    raise typer.Exit(0 if verdict.passed else 1)


def _show(verdicts: list[GateVerdict], as_json: bool) -> None:
    import json

    from rich.console import Console
    from rich.table import Table

    if as_json:
        typer.echo(json.dumps([v.to_dict() for v in verdicts], indent=2))
        return
    console = Console()
    colour = {"pass": "green", "fail": "red", "skip": "yellow", "insufficient": "magenta"}
    for verdict in verdicts:
        table = Table(title=f"{verdict.candidate} - {verdict.summary}")
        for column in ("rule", "value", "threshold", "result"):
            table.add_column(column, overflow="fold")
        for r in verdict.results:
            value = "n/a" if r.value is None else f"{r.value:.6g}"
            status = f"[{colour[r.status]}]{r.status.upper()}[/]"
            table.add_row(r.rule.metric, value, r.rule.threshold, status)
        console.print(table)
