"""`shadow models` - register models, move them through their lifecycle, roll back, history."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shadow.app.cli.common import ActorOption, ConfigOption, JsonOption, settings_from
from shadow.errors import UsageError

if TYPE_CHECKING:
    from shadow.registry import Event, ModelRecord, ModelRegistry

app = typer.Typer(help="Model registry: register, list, show, transition, rollback, history.")


def default_canary() -> dict[str, Any]:
    """A fixed synthetic transaction: the canary of a registration that names none."""
    from shadow.kit.synthetic import TransactionGenerator, features_of

    frame = TransactionGenerator(seed=0).batch(1, start_ms=1_767_225_600_000)
    return features_of(frame.iloc[0])


def _registry(config: Path | None) -> ModelRegistry:
    from shadow.registry import ModelRegistry

    return ModelRegistry.from_settings(settings_from(config))


@app.command("register")
def register(
    path: Annotated[Path, typer.Argument(help="The ONNX file.")],
    name: Annotated[str, typer.Option("--name", help="Model name.")],
    version: Annotated[str, typer.Option("--version", help="Model version.")],
    threshold: Annotated[
        float | None,
        typer.Option(
            help="Decision threshold; default: the model's ONNX metadata property 'threshold' "
            "(registration is refused when neither is given).",
            show_default=False,
        ),
    ] = None,
    canary: Annotated[
        Path | None,
        typer.Option(help='JSON file: {"features": {...}, "score": 0.12} or the features alone.'),
    ] = None,
    features: Annotated[
        Path | None,
        typer.Option(
            help="JSON list of the transaction's feature names; inputs must be among them."
        ),
    ] = None,
    sha256: Annotated[str | None, typer.Option(help="Expected sha256 of the file.")] = None,
    owner: Annotated[str, typer.Option(help="Owning team or person.")] = "",
    description: Annotated[str, typer.Option(help="What the model is.")] = "",
    training_data: Annotated[str, typer.Option(help="Reference to the training data.")] = "",
    actor: ActorOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check an ONNX file and register it in state `registered`."""
    canary_features, canary_score = _read_canary(canary)
    card = _registry(config).register(
        path,
        name,
        version,
        threshold=threshold,
        canary=canary_features if canary_features is not None else default_canary(),
        canary_score=canary_score,
        feature_names=_read_json(features, list) if features else None,
        actor=actor,
        owner=owner,
        description=description,
        training_data=training_data,
        sha256=sha256,
    )
    if as_json:
        typer.echo(card.to_json())
    else:
        typer.echo(
            f"registered {card.model_id} sha256 {card.sha256} threshold {card.threshold:g} "
            f"canary {card.canary_score}"
        )


@app.command("list")
def list_models(
    state: Annotated[str | None, typer.Option(help="Only models in this state.")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """List registered models and their states."""
    records = _registry(config).list(state)
    if as_json:
        typer.echo(json.dumps([_record_json(r) for r in records], indent=1))
        return
    rows = [
        [r.model_id, r.state, _how(r.entered), r.card.input_kind, str(len(r.card.features)),
         r.card.sha256[:12]]
        for r in records
    ]  # fmt: skip
    _table("models", ["model", "state", "how", "inputs", "features", "sha256"], rows)


@app.command("show")
def show(
    model_id: Annotated[str, typer.Argument(help="name@version")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one model's card and state."""
    record = _registry(config).get(model_id)
    data = _record_json(record)
    if as_json:
        typer.echo(json.dumps(data, indent=1))
        return
    card = data.pop("card")
    entered = record.entered
    data["entered_by"] = f"{entered.kind}: {entered.reason} ({entered.actor})" if entered else ""
    card["features"] = ", ".join(f"{k}:{v}" for k, v in card["features"].items())
    card["canary"] = f"{len(card['canary'])} feature values"
    _table(model_id, ["field", "value"], [[k, str(v)] for k, v in {**data, **card}.items()])


@app.command("transition")
def transition(
    model_id: Annotated[str, typer.Argument(help="name@version")],
    state: Annotated[str, typer.Argument(help="The new state.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the history).")],
    evidence: Annotated[
        Path | None,
        typer.Option(
            help="The gate's report folder (verdict.json beside evidence.json), or either file; "
            "needed for a move to passed or production.",
            show_default=False,
        ),
    ] = None,
    override: Annotated[
        bool,
        typer.Option(
            "--override",
            help="Move to passed or production without a passing gate verdict "
            "(recorded as an override).",
        ),
    ] = False,
    actor: ActorOption = None,
    config: ConfigOption = None,
) -> None:
    """Move a model to another state (the move is recorded as an event)."""
    from shadow.verdicts import read_gate_evidence

    registry = _registry(config)
    proof = read_gate_evidence(evidence, model_id) if evidence is not None else None
    event = registry.transition(model_id, state, actor, reason, proof, override=override)
    how = f", {_how(event)}" if _how(event) else ""
    typer.echo(f"{model_id}: {event.from_state} -> {event.to_state} (event {event.event_id}{how})")


@app.command("rollback")
def rollback(
    name: Annotated[str, typer.Argument(help="Model name (its production model is rolled back).")],
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in both histories).")],
    actor: ActorOption = None,
    config: ConfigOption = None,
) -> None:
    """Put back the model that was in production before the current one (one transaction)."""
    retired, restored = _registry(config).rollback(name, actor, reason)
    typer.echo(
        f"{name}: rolled back {retired.model_id} -> {restored.model_id} "
        f"(events {retired.event_id}, {restored.event_id})"
    )


@app.command("history")
def history(
    model_id: Annotated[str, typer.Argument(help="name@version")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every event of one model, oldest first."""
    events = _registry(config).history(model_id)
    if as_json:
        typer.echo(json.dumps([_event_json(e) for e in events], indent=1))
        return
    rows = [
        [_when(e), e.from_state or "", e.to_state, e.kind.upper() if e.kind in _LOUD else e.kind,
         e.actor, e.reason, _evidence(e)]
        for e in events
    ]  # fmt: skip
    _table(model_id, ["at", "from", "to", "kind", "actor", "reason", "evidence"], rows)


_LOUD = ("override", "rollback")
"""Event kinds shown in capitals: moves made without a gate's evidence."""


def _when(event: Event) -> str:
    return event.at.isoformat(timespec="seconds")


def _how(event: Event | None) -> str:
    """How a model reached its state, for the list: OVERRIDE, ROLLBACK, superseded, or the gate
    evidence it carried."""
    if event is None:
        return ""
    if event.kind in _LOUD:
        return event.kind.upper()
    if event.kind == "superseded":
        return "superseded"
    return f"gate {event.evidence}" if event.evidence_sha256 else ""


def _evidence(event: Event) -> str:
    if event.evidence is None:
        return ""
    digest = f" sha256 {event.evidence_sha256[:12]}" if event.evidence_sha256 else ""
    return f"{event.evidence}{digest}"


def _read_json(path: Path, kind: type) -> Any:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path} is not JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(data, kind):
        raise UsageError(f"{path} must hold a JSON {kind.__name__}")
    return data


def _read_canary(path: Path | None) -> tuple[dict[str, Any] | None, float | None]:
    if path is None:
        return None, None
    data = _read_json(path, dict)
    if isinstance(data.get("features"), dict):
        score = data.get("score")
        return data["features"], float(score) if score is not None else None
    return data, None


def _record_json(record: ModelRecord) -> dict[str, Any]:
    return {
        "model_id": record.model_id,
        "state": record.state,
        "entered_by": _event_json(record.entered) if record.entered else None,
        "object_key": record.object_key,
        "updated_at": record.updated_at.isoformat(),
        "card": record.card.model_dump(mode="json"),
    }


def _event_json(event: Event) -> dict[str, Any]:
    from dataclasses import asdict

    data = asdict(event)
    data["at"] = event.at.isoformat()
    return data


def _table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    Console().print(table)
