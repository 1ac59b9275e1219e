"""Demo switch - the gate's choice promoted under live traffic, and the window after the switch.

The live service scores through ``producers.live.LiveModel``. A few seconds into a short burst
of traffic the best passing candidate goes passed -> production (bound to the gate's verdict);
the live model sees it at its next poll, loads and canary-checks it while the old model serves,
and swaps. The comparison of the window after the switch then finds the promoted model as live.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from shadow.errors import ShadowError
from shadow.settings import Settings

if TYPE_CHECKING:
    from producers.live import LiveModel
    from shadow.app.demo.progress import PipelineStatus

POST_SECONDS = 12.0
"""Seconds of live traffic after the gate; the promotion happens during it."""
PROMOTE_AFTER = 3.0
"""Seconds into that traffic when the chosen candidate is promoted to production."""
LIVE_POLL_SECONDS = 1.0
"""How often the demo's live model asks the registry for the production model."""


@dataclass
class Switch:
    """What the live service saw: when production changed, when it switched, what failed."""

    from_model: str
    to_model: str
    promoted_after_s: float | None = None
    switched_after_s: float | None = None
    load_seconds: float | None = None
    requests: int = 0
    failed: int = 0
    served: dict[str, int] = field(default_factory=dict)
    first_ms: int | None = None
    """Event time from which only the promoted model answered (None if it answered none)."""
    error: str | None = None
    """Why the promotion was not recorded, if it was not."""

    def line(self) -> str:
        if self.error is not None:
            return f"{self.to_model} not promoted: {self.error}"
        if self.switched_after_s is None:
            return f"live model still {self.from_model}: it did not switch to {self.to_model}"
        after = self.switched_after_s - (self.promoted_after_s or 0.0)
        return (
            f"live model switched {self.from_model} → {self.to_model} "
            f"{self.switched_after_s:.1f}s into the traffic ({after:.1f}s after the promotion; "
            f"loaded and canary-checked in {self.load_seconds or 0:.2f}s while "
            f"{self.from_model} served), {self.failed} failed requests of {self.requests:,}"
        )


def promote_under_traffic(
    settings: Settings,
    service: Any,
    live: LiveModel,
    status: PipelineStatus,
    best: str,
    evidence_path: Path,
    tps: float,
) -> Switch:
    """Serve POST_SECONDS of traffic; PROMOTE_AFTER seconds in, promote `best` to production."""
    from shadow.app.demo.verdict import promote

    switch = Switch(live.model_id, best)
    swaps = len(live.swaps)
    started = time.time()

    def promote_now() -> None:
        try:
            promote(settings, best, evidence_path)
        except ShadowError as exc:  # reported by the demo, not lost in the timer's thread
            switch.error = str(exc)
            return
        switch.promoted_after_s = time.time() - started
        status.phase = f"{best} promoted to production: the live model follows the registry"

    timer = threading.Timer(PROMOTE_AFTER, promote_now)
    status.phase = (
        f"live traffic; the gate's choice {best} goes to production in {PROMOTE_AFTER:g}s"
    )
    timer.start()
    try:
        run = service.run(tps, POST_SECONDS)
    finally:
        timer.cancel()
        timer.join()
    for swap in live.swaps[swaps:]:
        if swap.to_model == best:
            switch.switched_after_s = swap.at - started
            switch.load_seconds = swap.load_seconds
    switch.requests, switch.failed = run.transactions, run.failed
    switch.served = dict(run.served)
    switch.first_ms = only_new_from(run, switch.from_model, best)
    return switch


def only_new_from(run: Any, old: str, new: str) -> int | None:
    """The event time from which every transaction was answered by `new`: after its first and
    after the last one `old` answered (threads still in a request when the swap came)."""
    first = run.first_served_ms.get(new)
    if first is None:
        return None
    last_old = run.last_served_ms.get(old)
    return first if last_old is None else max(first, last_old + 1)


def compare_after(settings: Settings, switch: Switch, run_dir: Path, console: Console) -> str:
    """Compare the window after the switch; one line saying which model the evidence has as live."""
    from analysis.evidence import write_evidence
    from analysis.run import run_comparison

    if switch.first_ms is None:
        return "after the switch: no transaction was answered by the promoted model"
    start = dt.datetime.fromtimestamp(switch.first_ms / 1000, dt.UTC)
    end = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    with console.status("comparing the window after the switch"):
        evidence, _ = run_comparison(settings, start, end, None, None)
    path = run_dir / "after-switch" / "evidence.json"
    write_evidence(evidence, path)
    live_models = ", ".join(evidence.get("live_models") or []) or "none"
    return (
        f"after the switch: {evidence['transactions']:,} sampled transactions with live model "
        f"{live_models} (threshold {evidence['live_threshold']:.4f}, from the "
        f"{evidence['live_threshold_source']}); evidence {path}"
    )
