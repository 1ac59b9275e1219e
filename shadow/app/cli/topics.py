"""`shadow topics create` - the transaction, dead-letter and predictions topics, sized up front."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from shadow.app.cli.common import ConfigOption, JsonOption, kafka_settings_from
from shadow.errors import UsageError

app = typer.Typer(help="Kafka topics shadow reads and writes.", no_args_is_help=True)


@app.command("create")
def create(
    partitions: Annotated[
        int, typer.Option("--partitions", help="Partitions of each new topic: the most workers.")
    ] = 6,
    replication: Annotated[
        int, typer.Option("--replication", help="Replication factor of each new topic.")
    ] = 1,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create kafka.topic, its dead-letter topic and worker.predictions_topic (when set).

    Idempotent: a topic that exists is left as it is and reported with its partitions.
    """
    from shadow.topics import create_topics, shadow_topics

    if partitions < 1 or replication < 1:
        raise UsageError("--partitions and --replication must be at least 1")
    settings = kafka_settings_from(config)
    states = create_topics(settings.kafka, shadow_topics(settings), partitions, replication)
    if as_json:
        typer.echo(json.dumps([state.as_dict() for state in states]))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("role", "topic", "status", "partitions", "replication", "note")
    for s in states:
        table.add_row(s.role, s.name, s.status, str(s.partitions), str(s.replication), s.note)
    Console().print(table)
