"""The worker service: `python -m consumers.worker` and `shadow worker` - a worker and its HTTP."""

from __future__ import annotations

import logging

from shadow.errors import ShadowError
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


def main(argv: list[str] | None = None) -> None:
    """`python -m consumers.worker [--config FILE]`."""
    import argparse
    import sys

    from shadow.logs import configure_logging
    from shadow.settings import load_settings

    parser = argparse.ArgumentParser(prog="python -m consumers.worker")
    parser.add_argument("--config", "-c", default=None)
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
        configure_logging(settings.log)
        serve(settings)
    except ShadowError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
