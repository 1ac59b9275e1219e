"""Monitor app - the Faust wiring of ShadowMonitor: topic, changelog table, agent, timers, web.

One monitor instance is meant to read the whole predictions topic (it is small: one compact
record per sampled transaction). The table uses the key partitioner (``use_partitioner``), so a
window's key lives in one changelog partition whatever source partition fed it, and a restart
restores every window from the changelog before the agent resumes at its committed offsets.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from consumers.monitor.auth import broker_credentials
from consumers.monitor.shadow_monitor import (
    FailHook,
    MonitorMetrics,
    ShadowMonitor,
    registry_fail_hook,
)
from shadow.envelope import decode_prediction
from shadow.errors import ConfigError, EnvelopeError
from shadow.topics import ensure_predictions_topic

if TYPE_CHECKING:
    import faust

    from shadow.settings import Settings

logger = logging.getLogger(__name__)

BATCH = 1000
"""Records folded per table update (or fewer, after BATCH_SECONDS)."""
BATCH_SECONDS = 0.5


def predictions_topic(settings: Settings) -> str:
    topic = settings.worker.predictions_topic
    if not topic:
        raise ConfigError(
            "worker.predictions_topic",
            "not set: the monitor reads the topic the workers publish prediction records to",
        )
    return topic


def broker_urls(settings: Settings) -> list[str]:
    from shadow.clients import bootstrap_servers

    return [f"kafka://{host.strip()}" for host in bootstrap_servers(settings.kafka).split(",")]


def build_app(settings: Settings, fail: FailHook | None = None) -> tuple[faust.App, ShadowMonitor]:
    """The Faust app and the monitor it feeds; ``fail`` defaults to the registry transition."""
    import faust

    conf = settings.monitor
    topic_name = predictions_topic(settings)
    brokers = broker_urls(settings)
    credentials = broker_credentials(settings.kafka)
    partitions = ensure_predictions_topic(settings, topic_name)
    app = faust.App(
        conf.app_id,
        broker=brokers,
        broker_credentials=credentials,
        store="memory://",
        datadir=str(conf.data_dir),
        web_port=conf.web_port,
        web_bind=conf.web_host,
        topic_partitions=partitions,
        consumer_auto_offset_reset="earliest",
        autodiscover=False,
    )
    topic = app.topic(
        topic_name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
    )
    table = app.Table(
        "windows",
        partitions=partitions,
        # key_type/value_type, not schema=: faust 0.15.3 decodes the changelog from these
        # (bytes -> raw), and would read a schema's raw values back as JSON on recovery
        key_type=str,
        value_type=bytes,
        use_partitioner=True,
    )
    hook = fail if fail is not None else registry_fail_hook(settings)
    monitor = ShadowMonitor(conf, table, hook, MonitorMetrics())
    _wire(app, topic, monitor)
    return app, monitor


def _wire(app: faust.App, topic: Any, monitor: ShadowMonitor) -> None:
    @app.agent(topic, name="shadow-monitor-fold")
    async def fold(stream: Any) -> None:
        async for events in stream.take_events(BATCH, within=BATCH_SECONDS):
            monitor.absorb(_decoded(events, monitor))
            monitor.expire(_now_ms())

    @app.timer(monitor.conf.check_seconds, name="shadow-monitor-judge")
    async def judge() -> None:
        loop = asyncio.get_running_loop()
        for breach in monitor.judge():
            # the registry is a blocking SQL call: keep the event loop (and the agent) running
            await loop.run_in_executor(None, monitor.act, breach)

    @app.page("/shadow/windows/")
    async def windows(web: Any, _request: Any) -> Any:
        return web.json(monitor.windows())

    @app.page("/metrics")
    async def metrics(web: Any, _request: Any) -> Any:
        return web.bytes(monitor.metrics.text(), content_type="text/plain; version=0.0.4")


def _decoded(events: list[Any], monitor: ShadowMonitor) -> list[Any]:
    records = []
    for event in events:
        try:
            records.append(decode_prediction(event.value))
        except EnvelopeError as exc:
            message = event.message
            monitor.metrics.bad_records.inc()
            logger.warning(
                "%s[%d]@%d skipped: %s", message.topic, message.partition, message.offset, exc
            )
    return records


def run(settings: Settings, loglevel: str = "info") -> None:
    """Run the monitor until SIGTERM/SIGINT (the `shadow monitor` body)."""
    from faust import Worker

    app, _monitor = build_app(settings)
    logger.info(
        "monitor %s reads %s, %gs windows, web on :%d",
        settings.monitor.app_id,
        settings.worker.predictions_topic,
        settings.monitor.window_seconds,
        settings.monitor.web_port,
    )
    Worker(app, loglevel=loglevel, quiet=True).execute_from_commandline()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
