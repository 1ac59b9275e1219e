"""`shadow monitor` - live early warning over the workers' prediction records (Faust)."""

from __future__ import annotations

from typing import Annotated

import typer

from shadow.app.cli.common import ConfigOption, kafka_settings_from

FaustLogOption = Annotated[
    str, typer.Option("--faust-log", help="Log level of Faust's own messages.")
]


def monitor(config: ConfigOption = None, faust_log: FaustLogOption = "warning") -> None:
    """Watch each candidate's windows (errors, NaN, agreement, PSI, p99) and fail broken ones.

    Serves /shadow/windows/ (JSON) and /metrics (Prometheus) on monitor.web_port.
    """
    settings = kafka_settings_from(config)
    try:
        from consumers.monitor.app import run
    except ImportError as exc:
        from shadow.errors import DependencyMissing

        raise DependencyMissing(
            "faust-streaming", f"pip install 'shadow-scoring[monitor]' ({exc.name} missing)"
        ) from None
    run(settings, loglevel=faust_log)
