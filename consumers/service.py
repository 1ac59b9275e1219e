"""The worker service - a worker and its HTTP endpoints: what `shadow worker` runs."""

from __future__ import annotations

import logging

from shadow.settings import Settings

logger = logging.getLogger(__name__)


def serve(settings: Settings) -> None:
    """Run a worker with its HTTP endpoints until SIGTERM/SIGINT (the `shadow worker` body)."""
    from consumers.http import WorkerHttp
    from consumers.probes import WorkerProbes
    from consumers.shutdown import Interrupted
    from consumers.worker import ShadowWorker

    worker = ShadowWorker(settings)
    worker.install_signal_handlers()
    probes = WorkerProbes(worker)
    http = WorkerHttp(
        settings.worker.http_port,
        worker.metrics.text,
        worker.health,
        worker.models,
        live=probes.liveness,
        ready=probes.readiness,
    )
    http.start()
    try:
        worker.run()
    except Interrupted as exc:
        logger.info("%s: nothing was consumed yet", exc)
    finally:
        http.stop()
