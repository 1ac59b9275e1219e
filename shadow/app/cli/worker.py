"""`shadow worker` - run one shadow worker of the consumer group until SIGTERM/SIGINT."""

from __future__ import annotations

from shadow.app.cli.common import ConfigOption, kafka_settings_from


def worker(config: ConfigOption = None) -> None:
    """Score every candidate on the transaction topic, land Parquet, commit after the write.

    Serves /metrics, /healthz, /livez, /readyz and /models on worker.http_port. SIGTERM or
    Ctrl-C flushes, commits and leaves the group.
    """
    from consumers.service import serve

    serve(kafka_settings_from(config))
