"""WorkerProbes - what /livez and /readyz answer for a worker (Kubernetes liveness, readiness).

/livez says the process loop is alive: the consume loop turned within worker.liveness_seconds
(a wedged loop is what a restart cures). /readyz says the worker does its job: it is a member of
the consumer group (with partitions, or idle when there are more workers than partitions), its
loaded models pass their canaries, and it is not shutting down. /healthz keeps its meaning:
the consumer exists and every loaded model scores its canary.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from consumers.worker import ShadowWorker


class WorkerProbes:
    """The liveness and readiness answers of one worker, as (ok, JSON report)."""

    def __init__(self, worker: ShadowWorker) -> None:
        self.worker = worker

    def liveness(self) -> tuple[bool, dict[str, Any]]:
        since = time.monotonic() - self.worker.last_turn
        ok = since <= self.worker.conf.liveness_seconds
        return ok, {
            "worker_id": self.worker.worker_id,
            "live": ok,
            "seconds_since_turn": round(since, 3),
            "limit_seconds": self.worker.conf.liveness_seconds,
        }

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        worker = self.worker
        healthy, report = worker.health()
        ready = healthy and worker.member and not worker.stopping
        report.update(
            ready=ready, member=worker.member, partitions=sorted(worker.assigned), healthy=healthy
        )
        return ready, report
