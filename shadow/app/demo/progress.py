"""Demo progress - live model, offered, sampled, scored, files and consumer lag, refreshed live."""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Callable
from typing import Any

from rich.table import Table

from shadow.objectstore import ObjectStore
from shadow.predictions import PREDICTIONS


class PipelineStatus:
    """Polls the tap, the workers' /metrics, the store and the group's lag once a second."""

    def __init__(
        self,
        tap_stats: Callable[[], dict[str, int]],
        worker_ports: list[int],
        store: ObjectStore,
        lag: Callable[[], int | None],
        live_stats: Callable[[], dict[str, Any]],
    ) -> None:
        self._tap_stats = tap_stats
        self._ports = worker_ports
        self._store = store
        self._lag = lag
        self._live_stats = live_stats
        self._served: list[str] = []
        self.phase = "starting"
        self.values: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="demo-status", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def refresh(self) -> dict[str, Any]:
        tap = self._tap_stats()
        scored, consumed = _worker_counts(self._ports)
        # counters of stopped workers are gone: keep the last figures they reported
        scored = max(scored, self.values.get("scored", 0))
        consumed = max(consumed, self.values.get("consumed", 0))
        live = self._live_stats()
        if live.get("model_id") and live["model_id"] not in self._served[-1:]:
            self._served.append(str(live["model_id"]))  # the models that served, in order
        self.values = {
            "live model": live.get("model_id", "-"),
            "failed": live.get("failed", 0),
            "offered": tap.get("offered", 0),
            "sampled": tap.get("enqueued", 0),
            "delivered": tap.get("delivered", 0),
            "dropped": tap.get("dropped", 0),
            "consumed": consumed,
            "scored": scored,
            "files": len(self._store.list(PREDICTIONS)),
            "lag": self._lag(),
        }
        return self.values

    def __rich__(self) -> Table:
        table = Table(title=f"shadow demo — {self.phase}", title_justify="left")
        for name in ("offered", "sampled", "delivered", "consumed", "scored", "files", "lag"):
            table.add_column(name, justify="right")
        v = self.values
        row = [v.get(k) for k in ("offered", "sampled", "delivered", "consumed", "scored")]
        cells = [f"{x:,}" if isinstance(x, int) else "-" for x in row]
        lag = v.get("lag")
        cells += [f"{v.get('files', 0):,}", f"{lag:,}" if isinstance(lag, int) else "-"]
        table.add_row(*cells)
        table.caption = (
            f"live model {' → '.join(self._served) or '-'} · failed requests {v.get('failed', 0):,}"
        )
        table.caption_justify = "left"
        return table

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - a display glitch must not stop the demo
                continue


def _worker_counts(ports: list[int]) -> tuple[int, int]:
    """(predictions scored, records consumed) summed over the workers' /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    scored = consumed = 0.0
    for port in ports:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as r:
                text = r.read().decode()
        except OSError:
            continue
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "shadow_worker_scored_total":
                    scored += sample.value
                elif sample.name == "shadow_worker_consumed_total":
                    consumed += sample.value
    return int(scored), int(consumed)


def group_lag(config: dict[str, Any], topic: str, group: str) -> int | None:
    """Records of the topic the group has not committed yet (None while unknown)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({**config, "group.id": group, "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(topic, timeout=5)
        partitions = [TopicPartition(topic, p) for p in metadata.topics[topic].partitions]
        committed = consumer.committed(partitions, timeout=5)
        lag = 0
        for tp in committed:
            low, high = consumer.get_watermark_offsets(tp, timeout=5)
            lag += high - (tp.offset if tp.offset >= 0 else low)
        return lag
    except Exception:  # noqa: BLE001 - lag is informative; unknown is shown as "-"
        return None
    finally:
        consumer.close()
