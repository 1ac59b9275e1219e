"""End to end: the real worker publishes prediction records, the monitor fails a near-constant
candidate in the registry, and the worker unloads it on its next reload."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from monitor_support import monitor_settings, running

from consumers.candidates import Candidate, CandidateSet
from consumers.publisher import PredictionPublisher
from consumers.worker import ShadowWorker
from shadow.envelope import LiveScore, encode, make_envelope
from shadow.kit.reference_models import write_tiny_model
from shadow.kit.synthetic import TransactionGenerator, feature_dicts
from shadow.registry import ModelRegistry
from shadow.scorer import OnnxScorer

pytestmark = pytest.mark.integration

__all__ = ["running"]  # the fixture, imported so pytest finds it here


class RegistryShadowSet:
    """The worker's ModelSource over the real registry: the models in state shadow."""

    def __init__(self, registry: ModelRegistry, cache: Path) -> None:
        self.registry = registry
        self.cache = cache

    def shadow_ids(self) -> list[str]:
        return [record.model_id for record in self.registry.list("shadow")]

    def load(self, model_id: str) -> Candidate:
        card = self.registry.get(model_id).card
        scorer = OnnxScorer(card, self.registry.fetch(model_id, self.cache))
        return Candidate(model_id, scorer, card.threshold, card.canary_score or 0.0, card.sha256)

    def report_failed(self, model_id: str, reason: str) -> None:
        raise AssertionError(f"{model_id} should not fail in the worker: {reason}")


def register(registry: ModelRegistry, folder: Path) -> OnnxScorer:
    """good@1 (the live model's twin) and const@1 (weight 0: about 0.12 for every transaction)."""
    for name, weight in (("good", 1.0), ("const", 0.0)):
        path = write_tiny_model(folder / f"{name}.onnx", weight=weight)
        registry.register(path, name, "1")
        registry.transition(f"{name}@1", "shadow", actor="test", reason="start shadowing")
    card = registry.get("good@1").card
    return OnnxScorer(card, registry.fetch("good@1", folder / "live"))


def transactions(live: OnnxScorer, n: int, seed: int) -> list[tuple[bytes, bytes]]:
    """n envelopes stamped now, the live score being the live model's (good@1's twin) own."""
    rows = feature_dicts(TransactionGenerator(seed).batch(n))
    scores = live.score_features(rows).scores
    now = time.time_ns() // 1_000_000
    out = []
    for i, (features, score) in enumerate(zip(rows, scores, strict=True)):
        txn = f"w{seed}-{i}"
        envelope = make_envelope(txn, features, LiveScore("live@1", float(score)), now)
        out.append((txn.encode(), encode(envelope)))
    return out


def test_worker_publishes_monitor_fails_const_worker_unloads_it(
    settings_for: Any, unique_topic: Any, running: Any, kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = monitor_settings(settings_for, unique_topic)
    topic = unique_topic(partitions=3, prefix="txns")
    settings = settings.model_copy(
        update={
            "kafka": settings.kafka.model_copy(update={"topic": topic}),
            "worker": settings.worker.model_copy(
                update={"flush_seconds": 1.0, "reload_seconds": 1.0, "group_id": f"g-{topic}"}
            ),
        }
    )
    registry = ModelRegistry.from_settings(settings)
    live = register(registry, tmp_path)
    monitor = running(settings)
    probes = PredictionPublisher.from_settings(settings)
    monitor.wait_until_consuming(probes)  # the monitor reads before the worker's traffic starts
    assert probes.close() == 0
    candidates = CandidateSet(RegistryShadowSet(registry, tmp_path / "cache"), 5, 1.0)
    # worker.predictions_topic is set: the worker builds its own PredictionPublisher
    worker = ShadowWorker(settings, candidates=candidates)
    publisher = worker.publish
    assert isinstance(publisher, PredictionPublisher)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 10})
    seed = iter(range(10_000))

    def feed() -> None:
        for key, value in transactions(live, 50, next(seed)):
            producer.produce(topic, value=value, key=key)
        producer.flush(10)
        time.sleep(0.25)

    try:
        monitor.wait_for(
            lambda: feed() or registry.get("const@1").state == "failed", 90, "const@1 failed"
        )
        monitor.wait_for(
            lambda: feed() or [c.model_id for c in candidates.loaded()] == ["good@1"],
            30,
            "the worker unloading const@1",
        )
    finally:
        worker.stop()
        thread.join(60)  # close() flushes the publisher
    assert registry.get("good@1").state == "shadow"
    assert publisher.published > 0 and publisher.dropped == 0
    doc = monitor.windows()
    good = [w for w in doc["models"]["good@1"] if w["closed"] and w["count"] >= 20]
    assert good and all(w["agreement"] == 1.0 and w["psi"] < 0.01 for w in good)
    registry.close()
