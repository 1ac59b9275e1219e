"""Demo run - live traffic through the tap, two workers, labels, comparison, gate, promotion.

The live service scores through ``producers.live.LiveModel``; after the gate, the chosen
candidate is promoted under traffic (shadow.app.demo.switch) and the live model switches to it.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live

from shadow.app.demo.models import NAME, DemoModels
from shadow.app.demo.progress import PipelineStatus, group_lag
from shadow.app.demo.stack import DemoStack
from shadow.app.demo.switch import LIVE_POLL_SECONDS, Switch, compare_after, promote_under_traffic
from shadow.settings import Settings, load_settings

logger = logging.getLogger(__name__)

DATA_DIR = Path("shadow-data")
PARTITIONS = 6
DEMO_CALENDAR_MS = 1_767_268_800_000
"""2026-01-01 12:00 UTC: the calendar of the demo's traffic (its fraud depends on the hour of
day), so every run tells the same story; its event times are the wall clock's."""


@dataclass(frozen=True)
class DemoOptions:
    """What `shadow demo` was asked for."""

    seconds: float = 60.0
    tps: float = 1000.0
    workers: int = 2
    seed: int = 7
    store: str | None = None
    config: Path | None = None
    fraud_rate: float = 0.01


@dataclass
class DemoResult:
    """Where the run's outputs are and what the gate decided."""

    run_dir: Path
    store_uri: str
    registry_url: str
    paths: dict[str, Path] = field(default_factory=dict)
    verdicts: list[Any] = field(default_factory=list)
    promoted: str | None = None
    models: DemoModels | None = None
    traffic: dict[str, Any] = field(default_factory=dict)
    switch: Switch | None = None
    after: str = ""
    """The comparison of the window after the switch, in one line."""


@dataclass
class Traffic:
    """The live service, its tap and the live table, for both traffic phases."""

    service: Any
    tap: Any
    status: PipelineStatus


def run_demo(base: Settings, options: DemoOptions, console: Console) -> DemoResult:
    """The whole pipeline once; everything it started is stopped, even on Ctrl-C."""
    run_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = (DATA_DIR / run_id).resolve()
    run_dir.mkdir(parents=True)
    _link_latest(run_dir)
    stack = DemoStack(base, run_dir)
    try:
        console.print(f"[bold]shadow demo[/] run {run_id} → {run_dir}")
        bootstrap = stack.bootstrap()
        overrides = _overrides(base, options, run_dir, run_id, bootstrap)
        _write_config(run_dir / "shadow.yaml", overrides)
        settings = load_settings(options.config, **overrides)
        result = DemoResult(run_dir, settings.store.uri, settings.registry.url)
        _prepare(settings, options, console, result)
        _run_traffic(settings, options, stack, overrides, console, result)
        if result.switch is not None:
            result.after = compare_after(settings, result.switch, run_dir, console)
        return result
    finally:
        stack.close()


def _overrides(
    base: Settings, options: DemoOptions, run_dir: Path, run_id: str, bootstrap: str
) -> dict[str, dict[str, Any]]:
    """The settings this run changes; passed to the workers as SHADOW__* variables too."""
    external = bool(base.kafka.bootstrap_servers)
    store = f"{options.store.rstrip('/')}/{run_id}" if options.store else str(run_dir / "store")
    return {
        "kafka": {
            "bootstrap_servers": bootstrap,
            "topic": f"{base.kafka.topic}.demo-{run_id}" if external else base.kafka.topic,
        },
        "store": {"uri": store},
        "registry": {"url": f"sqlite:///{run_dir / 'registry.db'}"},
        "worker": {
            "group_id": f"shadow-demo-{run_id}",
            "flush_seconds": 5,
            "reload_seconds": 5,
            "store_features": True,
        },
        "live": {"poll_seconds": LIVE_POLL_SECONDS},
    }


def _worker_env(overrides: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {
        f"SHADOW__{section.upper()}__{key.upper()}": str(value).lower()
        if isinstance(value, bool)
        else str(value)
        for section, values in overrides.items()
        for key, value in values.items()
    }


def _prepare(
    settings: Settings, options: DemoOptions, console: Console, result: DemoResult
) -> None:
    from shadow.app.demo.models import register_models
    from shadow.clients import ensure_topic
    from shadow.registry import ModelRegistry

    ensure_topic(settings.kafka, settings.kafka.topic, PARTITIONS)
    with console.status("building the reference models (cached after the first run)"):
        registry = ModelRegistry.from_settings(settings)
        try:
            result.models = register_models(registry, options.seed)
        finally:
            registry.close()
    m = result.models
    console.print(
        f"live model [bold]{m.live}[/] (baseline) in production, threshold {m.threshold:.4f}"
    )
    for kind, model_id in m.candidates.items():
        console.print(f"candidate [bold]{model_id}[/] ({kind}) in shadow")


def _run_traffic(
    settings: Settings,
    options: DemoOptions,
    stack: DemoStack,
    overrides: dict[str, dict[str, Any]],
    console: Console,
    result: DemoResult,
) -> None:
    """Workers up; live traffic; drain; compare and gate; the promotion under traffic; drain;
    workers down. The live model and the tap serve both traffic phases."""
    from producers.live import LiveModel

    stack.start_workers(options.workers, _worker_env(overrides), options.config)
    with console.status(f"starting {options.workers} workers"):
        stack.wait_workers_ready()
    live = LiveModel(NAME, settings)
    traffic = _open_traffic(settings, options, stack, live)
    try:
        traffic.status.start()
        started_ms = time.time_ns() // 1_000_000
        with Live(traffic.status, console=console, refresh_per_second=2):
            traffic.status.phase = f"live traffic at {options.tps:g} tps for {options.seconds:g}s"
            run = traffic.service.run(options.tps, options.seconds)
            traffic.status.phase = "draining: waiting for every sampled transaction to be committed"
            _drain(traffic.status, settings.worker.flush_seconds * 4 + 30)
            traffic.status.phase = "drained: every sampled transaction is committed"
        console.print()  # the live table's last frame ends without a newline
        result.traffic = run.summary()
        _analyse(settings, traffic.service, started_ms, console, result)
        if result.promoted is not None:
            _switch(settings, options, stack, console, result, traffic, live)
        _finish(traffic, stack, console, settings)
        result.traffic = {**result.traffic, **traffic.status.values}
    finally:
        traffic.status.stop()
        traffic.tap.close(1)  # a no-op after the drain; on Ctrl-C, before the broker goes away
        live.close()


def _open_traffic(settings: Settings, options: DemoOptions, stack: DemoStack, live: Any) -> Traffic:
    from producers.tap import open_tap
    from shadow.clients import base_config
    from shadow.kit.live_service import SyntheticLiveService
    from shadow.objectstore import open_store

    tap = open_tap(settings)
    kafka = settings.kafka
    lag = lambda: group_lag(base_config(kafka), kafka.topic, settings.worker.group_id)  # noqa: E731
    status = PipelineStatus(tap.stats, stack.ports, open_store(settings.store), lag, live.stats)
    service = SyntheticLiveService(
        settings,
        None,
        seed=options.seed + 1,  # fresh traffic: the models were trained on options.seed
        tap=tap,
        fraud_rate=options.fraud_rate,
        model=live,
        calendar_ms=DEMO_CALENDAR_MS,  # the same traffic and labels whatever the hour
    )
    return Traffic(service, tap, status)


def _switch(
    settings: Settings,
    options: DemoOptions,
    stack: DemoStack,
    console: Console,
    result: DemoResult,
    traffic: Traffic,
    live: Any,
) -> None:
    """The gate's choice promoted to production while the live service serves."""
    from shadow.registry import ModelRegistry

    assert result.promoted is not None
    registry = ModelRegistry.from_settings(settings)
    try:
        shadow_set = {card.model_id for card in registry.shadow_set()}
    finally:
        registry.close()
    with console.status("waiting for the workers to unload the models the gate judged"):
        stack.wait_models(shadow_set)
    with Live(traffic.status, console=console, refresh_per_second=2):
        result.switch = promote_under_traffic(
            settings,
            traffic.service,
            live,
            traffic.status,
            result.promoted,
            result.paths["evidence"],
            options.tps,
        )
        traffic.status.phase = result.switch.line()
        traffic.status.refresh()
    console.print()
    if result.switch.error is not None:
        result.promoted = None  # the verdict table shows what happened


def _finish(traffic: Traffic, stack: DemoStack, console: Console, settings: Settings) -> None:
    """Every sampled transaction committed, then the workers leave the group."""
    with Live(traffic.status, console=console, refresh_per_second=2):
        traffic.status.phase = "draining: waiting for every sampled transaction to be committed"
        traffic.tap.close(30)
        _drain(traffic.status, settings.worker.flush_seconds * 4 + 30)
        traffic.status.phase = "stopping workers (flush, commit, leave the group)"
        stack.stop_workers()
        traffic.status.refresh()
        traffic.status.phase = "done"


def _drain(status: PipelineStatus, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        values = status.refresh()
        if values.get("lag") == 0 and values.get("delivered") == values.get("sampled"):
            return
        time.sleep(1.0)
    logger.warning("the workers did not commit everything within %.0fs", timeout)


def _analyse(
    settings: Settings, service: Any, started_ms: int, console: Console, result: DemoResult
) -> None:
    """Late labels, the comparison, the gate, the promotion, and the report that says them."""
    from analysis.run import run_comparison
    from shadow.app.demo.verdict import decide, publish_outcome
    from shadow.objectstore import open_store

    service.write_labels(open_store(settings.store))
    start = dt.datetime.fromtimestamp(started_ms / 1000 - 60, dt.UTC)
    end = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    with console.status("comparing candidates with the live model") as spinner:
        evidence, paths = run_comparison(
            settings,
            start,
            end,
            None,
            result.run_dir / "report",
            progress=lambda step: spinner.update(f"comparison: {step}"),
            report=False,  # written once the verdicts and the promotion are known
        )
    result.verdicts, result.promoted = decide(settings, evidence, paths["evidence"])
    with console.status("writing the report"):
        live = result.models.live if result.models else None
        paths.update(
            publish_outcome(evidence, paths["evidence"], result.verdicts, result.promoted, live)
        )
    result.paths = paths


def _link_latest(run_dir: Path) -> None:
    latest = run_dir.parent / "latest"
    if latest.is_symlink() or not latest.exists():
        latest.unlink(missing_ok=True)
        latest.symlink_to(run_dir.name)


def _write_config(path: Path, overrides: dict[str, dict[str, Any]]) -> None:
    """The run's own settings (no secrets in them), for `shadow ... --config` afterwards."""
    import yaml

    path.write_text(yaml.safe_dump(overrides, sort_keys=False))
