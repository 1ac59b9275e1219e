"""LiveModel: serves the production model, follows the registry blue-green, never raises.

Runs on SQLite here and on PostgreSQL in tests/integration/test_registry_postgres.py.
tests/integration/test_live_traffic.py promotes and rolls back under traffic through the tap.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from producers.live import LiveModel
from shadow.errors import RegistryError, RegistryUnavailable
from shadow.registry import ModelRegistry
from shadow.scorer import OnnxScorer
from shadow.settings import Settings, load_settings
from tests.unit.registry_fixtures import *  # noqa: F403 - registry_url, store, registry, name, tiny
from tests.unit.registry_fixtures import CANARY

FEATURES = {"amount": 420.0, "device_risk": 0.7, "merchant_category": "7995"}


@pytest.fixture
def settings(registry_url: str, store, tmp_path: Path) -> Settings:
    return load_settings(
        None,
        registry={"url": registry_url, "model_cache": str(tmp_path / "cache")},
        store={"uri": store.uri},
        live={"poll_seconds": 0.1},
    )


def _models(registry: ModelRegistry, tmp_path: Path, name: str, weights: dict[str, float]):
    """Register tiny models (their scores differ by weight), each moved to shadow."""
    from shadow.kit.reference_models import write_tiny_model

    ids = {}
    for version, weight in weights.items():
        path = write_tiny_model(tmp_path / f"w{version}" / "model.onnx", "columns", weight)
        card = registry.register(path, name, version, threshold=0.6, canary=CANARY)
        registry.transition(card.model_id, "shadow", "ci", "into shadow")
        ids[version] = card.model_id
    return ids


def _promote(registry: ModelRegistry, model_id: str) -> None:
    registry.transition(model_id, "passed", "ci", "test", override=True)
    registry.transition(model_id, "production", "ci", "test", override=True)


def _expected(registry: ModelRegistry, model_id: str, settings: Settings) -> float:
    path = registry.fetch(model_id, settings.registry.model_cache)
    return float(OnnxScorer(registry.get(model_id).card, path).score_features([FEATURES]).scores[0])


@pytest.fixture
def live_pair(registry, settings, tmp_path, name) -> Iterator[tuple[LiveModel, dict[str, str]]]:
    ids = _models(registry, tmp_path, name, {"1": 1.0, "2": 3.0})
    _promote(registry, ids["1"])
    live = LiveModel(name, settings)
    yield live, ids
    live.close()


def _wait_for(live: LiveModel, model_id: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while live.model_id != model_id and time.monotonic() < deadline:
        time.sleep(0.02)
    assert live.model_id == model_id


def test_it_serves_the_production_model_with_the_card_threshold(live_pair, registry, settings):
    live, ids = live_pair
    answer = live.predict(FEATURES)
    assert answer.model_id == ids["1"] == live.model_id
    assert answer.score == _expected(registry, ids["1"], settings)
    assert answer.decision == ("alert" if answer.score >= 0.6 else "pass")
    assert answer.latency_ms > 0
    many = live.predict_many([FEATURES, {**FEATURES, "device_risk": 0.0}])
    assert [a.model_id for a in many] == [ids["1"]] * 2 and many[0].score == answer.score
    assert live.stats() == {
        "model_id": ids["1"],
        "requests": 3,
        "failed": 0,
        "swaps": 0,
        "refused": 0,
    }


def test_it_follows_a_promotion_and_a_rollback(live_pair, registry, settings, name):
    live, ids = live_pair
    _promote(registry, ids["2"])
    _wait_for(live, ids["2"])  # the follower thread, polling every 0.1 s
    answer = live.predict(FEATURES)
    assert (answer.model_id, answer.score) == (ids["2"], _expected(registry, ids["2"], settings))
    registry.rollback(name, "ci", "back")
    _wait_for(live, ids["1"])
    assert live.predict(FEATURES).model_id == ids["1"]
    assert [(s.from_model, s.to_model) for s in live.swaps] == [
        (ids["1"], ids["2"]),
        (ids["2"], ids["1"]),
    ]


def test_it_starts_only_with_a_production_model(registry, settings, name, tmp_path):
    _models(registry, tmp_path, name, {"1": 1.0})
    with pytest.raises(RegistryError, match=f"no model named {name} is in production"):
        LiveModel(name, settings)


def _set_canary_score(registry_url: str, model_id: str, score: float) -> None:
    """The card's expected canary score drifts (e.g. a runtime that answers differently)."""
    engine = create_engine(registry_url)
    with engine.begin() as conn:
        card = json.loads(
            conn.execute(
                text("SELECT card FROM shadow_models WHERE model_id = :m"), {"m": model_id}
            ).scalar_one()
        )
        card["canary_score"] = score
        conn.execute(
            text("UPDATE shadow_models SET card = :c WHERE model_id = :m"),
            {"c": json.dumps(card), "m": model_id},
        )
    engine.dispose()


def test_a_model_failing_its_canary_is_not_swapped_in_and_the_refusal_is_recorded(
    live_pair, registry, registry_url
):
    live, ids = live_pair
    live.close()  # polls by hand from here on
    _set_canary_score(registry_url, ids["2"], 0.123)
    _promote(registry, ids["2"])
    assert live.poll() is False
    assert live.predict(FEATURES).model_id == ids["1"]
    note = registry.history(ids["2"])[-1]
    assert (note.kind, note.actor) == ("note", live.actor)
    assert "not swapped in" in note.reason and "canary score" in note.reason
    assert live.poll() is False  # tried once per file: no second event
    assert registry.history(ids["2"])[-1] == note
    assert live.stats()["refused"] == 1


def test_a_tampered_file_is_not_swapped_in(live_pair, registry, store, name, settings):
    live, ids = live_pair
    live.close()
    store.put(f"models/{name}/2/model.onnx", b"not the registered model")
    _promote(registry, ids["2"])
    assert live.poll() is False and live.model_id == ids["1"]
    assert "sha256 mismatch" in registry.history(ids["2"])[-1].reason


def test_an_unreachable_registry_or_a_failing_request_never_raises(live_pair, monkeypatch):
    live, ids = live_pair
    live.close()

    def down(name: str) -> None:
        raise RegistryUnavailable("registry: connection refused")

    monkeypatch.setattr(live._registry, "production", down)
    assert live.poll() is False and live.model_id == ids["1"]
    monkeypatch.setattr(live._registry, "production", lambda name: 1 / 0)
    assert live.poll() is False and live.model_id == ids["1"]

    def broken(rows):
        raise RuntimeError("onnxruntime exploded")

    monkeypatch.setattr(live._serving.scorer, "score_features", broken)
    answer = live.predict(FEATURES)
    assert (answer.model_id, answer.decision) == (ids["1"], None) and answer.score != answer.score
    assert live.stats()["failed"] == 1


def test_the_live_model_imports_no_analysis_library():
    heavy = ("duckdb", "scipy", "matplotlib", "pandas", "pyarrow", "sklearn", "onnx")
    code = f"import sys, producers.live; print([m for m in {heavy!r} if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
