"""`shadow compare | gate | promote` - compare candidates with live, apply a policy, promote."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shadow.app.cli.common import ActorOption, ConfigOption, JsonOption, settings_from

if TYPE_CHECKING:
    from analysis.judgement import Judgement
    from analysis.policy import GateVerdict

PolicyOption = Annotated[
    Path | None,
    typer.Option("--policy", "-p", help="YAML policy (default: the packaged default policy)."),
]
GateOption = Annotated[
    bool,
    typer.Option(
        "--gate/--no-gate",
        help="Judge the candidates with the policy and open the report with the verdicts.",
    ),
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
    policy: PolicyOption = None,
    judge: GateOption = True,
    config: ConfigOption = None,
) -> None:
    """Compare candidates with live over a window: evidence.json, verdict.json, summary.md,
    report.html (exit 0 whatever the verdicts: `shadow gate` exits by them)."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from analysis.policy import load_policy
    from analysis.run import run_comparison
    from analysis.window import parse_window
    from shadow.errors import UsageError

    if policy is not None and not judge:
        raise UsageError("--policy and --no-gate contradict each other: drop one")
    settings = settings_from(config)
    rules = load_policy(policy) if judge else None  # a bad policy stops before the work
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
            policy=rules,
        )
    _summarise(console, evidence, paths)


def _summarise(console: Any, evidence: dict[str, Any], paths: dict[str, Path]) -> None:
    """What the comparison found and wrote: counts, left-out objects, verdicts, file paths."""
    console.print(
        f"{evidence['transactions']:,} sampled transactions, "
        f"{len(evidence['candidates'])} candidate(s), evidence {evidence['evidence_id']}"
    )
    for skipped in evidence.get("skipped_objects", []):
        console.print(f"left out {skipped['key']}: not readable Parquet ({skipped['problem']})")
    if "verdict" in paths:
        _print_verdicts(console, paths["verdict"])
    for name, path in paths.items():
        typer.echo(f"{name}: {path}")


def _print_verdicts(console: Any, path: Path) -> None:
    """One line per candidate from verdict.json: status and the rules that block it."""
    import json

    from rich.markup import escape

    document = json.loads(path.read_text(encoding="utf-8"))
    for name, entry in sorted(document["verdicts"].items()):
        verdict = entry["gate"]
        blocking = [
            r["metric"] for r in verdict["rules"] if r["status"] in ("fail", "insufficient")
        ]
        line = f"{name}: {verdict['status'].upper()}"
        console.print(escape(line + (f" ({', '.join(blocking)})" if blocking else "")))
    for name, reason in document.get("unjudged", {}).items():
        console.print(escape(f"{name}: NOT JUDGED ({reason})"))


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
    report: Annotated[
        bool,
        typer.Option(
            help="Write verdict.json and the report with the verdicts beside the evidence."
        ),
    ] = True,
) -> None:
    """Apply a policy to evidence: exit 0 pass, 1 fail, 2 unusable input; write verdict.json."""
    from analysis.evidence import load_evidence, metric_names
    from analysis.gate import evaluate_all, exit_code
    from analysis.judgement import Judgement
    from analysis.policy import default_policy_path, load_policy
    from shadow.errors import UsageError
    from shadow.verdicts import record_verdicts

    if list_metrics:
        typer.echo("\n".join(sorted(metric_names())))
        return
    if evidence is None:
        raise UsageError("--evidence is required (the evidence.json of `shadow compare`)")
    rules = load_policy(policy)
    document = load_evidence(evidence)
    verdicts = evaluate_all(rules, document, candidate or None)
    record_verdicts(evidence, verdicts, policy or default_policy_path())  # verdict.json
    _show(verdicts, as_json)
    if report:
        _publish(document, evidence, Judgement(rules, verdicts))
    raise typer.Exit(exit_code(verdicts))


def _publish(document: dict[str, Any], evidence: Path, judgement: Judgement) -> None:
    """The report re-rendered with the verdicts beside the evidence; a folder that refuses the
    files costs a warning, never the gate's exit code."""
    from analysis.report import write_report

    try:
        paths = write_report(document, evidence.parent, judgement)
    except OSError as exc:
        typer.echo(f"warning: report not written beside {evidence} ({exc})", err=True)
        return
    typer.echo(f"verdict: {evidence.parent / 'verdict.json'}", err=True)
    typer.echo(f"report: {paths['report']}", err=True)


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
