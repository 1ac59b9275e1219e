"""ModelRegistry on SQLite: every transition, every refusal, races, fetch and tampering.

tests/integration/test_registry_postgres.py runs this same suite against a real PostgreSQL server
by overriding the ``registry_url`` fixture.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import onnx
import pytest

import shadow.registry as registry_module
from shadow.errors import ModelError, RegistryError, StoreError
from shadow.kit.reference_models import write_tiny_model
from shadow.kit.synthetic import FEATURE_NAMES
from shadow.objectstore import LocalStore
from shadow.registry import MOVES, STATES, ModelRegistry
from shadow.scorer import OnnxScorer
from shadow.verdicts import GateEvidence
from tests.unit.registry_fixtures import *  # noqa: F403 - registry_url, store, registry, name, tiny
from tests.unit.registry_fixtures import CANARY


def _register(registry: ModelRegistry, path: Path, name: str, version: str = "1") -> str:
    return registry.register(path, name, version, canary=CANARY, actor="ci").model_id


def passing(model_id: str, evidence_id: str = "report-1") -> GateEvidence:
    """A gate verdict that passed the model (as shadow.verdicts.read_gate_evidence gives)."""
    return GateEvidence(model_id, True, evidence_id, "ab" * 32, "report/verdict.json")


def _move(registry: ModelRegistry, model_id: str, *states: str) -> None:
    for state in states:
        registry.transition(model_id, state, "ci", f"to {state}", passing(model_id))


def _path_to(state: str) -> list[str]:
    return {
        "registered": [],
        "shadow": ["shadow"],
        "passed": ["shadow", "passed"],
        "failed": ["shadow", "failed"],
        "production": ["shadow", "passed", "production"],
        "retired": ["retired"],
    }[state]


def test_register_records_card_state_object_and_event(registry, store, tiny, name):
    card = registry.register(tiny, name, "1", threshold=0.3, canary=CANARY, owner="risk")
    record = registry.get(card.model_id)
    assert record.state == "registered"
    assert record.card == card
    assert card.input_kind == "columns"
    assert card.features == {
        "amount": "float",
        "device_risk": "float",
        "merchant_category": "string",
    }
    assert card.threshold == 0.3 and card.owner == "risk"
    assert store.exists(f"models/{name}/1/model.onnx")
    assert store.get(f"models/{name}/1/model.onnx") == tiny.read_bytes()
    [event] = registry.history(card.model_id)
    assert (event.from_state, event.to_state) == (None, "registered")


def test_the_canary_score_is_what_the_model_answers(registry, tiny, name, tmp_path):
    card = registry.register(tiny, name, "1", canary=CANARY)
    scorer = OnnxScorer(card, tiny)
    assert card.canary_score == scorer.score_features([CANARY]).scores[0]
    default = registry.register(tiny, name, "2")
    assert default.canary and default.canary_score is not None


@pytest.mark.parametrize(
    ("start", "target"),
    [(s, t) for s in STATES for t in STATES if t != s],
)
def test_every_move_is_allowed_or_refused_as_the_lifecycle_says(
    registry, tiny, name, start, target
):
    model_id = _register(registry, tiny, name)
    _move(registry, model_id, *_path_to(start))
    before = len(registry.history(model_id))
    if target in MOVES[start]:
        event = registry.transition(model_id, target, "ci", "because", passing(model_id))
        assert (event.from_state, event.to_state, event.evidence) == (start, target, "report-1")
        assert registry.get(model_id).state == target
        assert len(registry.history(model_id)) == before + 1
    else:
        with pytest.raises(RegistryError) as refused:
            registry.transition(model_id, target, "ci", "because")
        message = str(refused.value)
        assert f"is {start}" in message and target in message
        assert all(move in message for move in MOVES[start])
        assert registry.get(model_id).state == start
        assert len(registry.history(model_id)) == before


def test_history_keeps_actor_reason_evidence_in_order(registry, tiny, name):
    model_id = _register(registry, tiny, name)
    registry.transition(model_id, "shadow", "alice", "start shadow")
    registry.transition(model_id, "passed", "ci-bot", "gate passed", passing(model_id, "gate-42"))
    history = registry.history(model_id)
    assert [(e.to_state, e.actor, e.reason, e.evidence) for e in history[1:]] == [
        ("shadow", "alice", "start shadow", None),
        ("passed", "ci-bot", "gate passed", "gate-42"),
    ]
    assert history[0].at <= history[1].at <= history[2].at


def test_unknown_state_missing_reason_and_unknown_model_are_refused(registry, tiny, name):
    model_id = _register(registry, tiny, name)
    with pytest.raises(RegistryError, match="unknown state"):
        registry.transition(model_id, "canary", "ci", "x")
    with pytest.raises(RegistryError, match="needs a reason"):
        registry.transition(model_id, "shadow", "ci", "  ")
    with pytest.raises(RegistryError, match="not registered"):
        registry.transition(f"{name}@9", "shadow", "ci", "x")
    with pytest.raises(RegistryError, match="already registered"):
        _register(registry, tiny, name)


def test_promoting_retires_the_previous_production_model(registry, tiny, name):
    first = _register(registry, tiny, name, "1")
    second = _register(registry, tiny, name, "2")
    _move(registry, first, "shadow", "passed", "production")
    _move(registry, second, "shadow", "passed")
    registry.transition(second, "production", "ci", "better", passing(second, "gate-7"))
    assert registry.production(name).model_id == second
    assert registry.get(first).state == "retired"
    last = registry.history(first)[-1]
    assert (last.from_state, last.to_state, last.reason, last.kind, last.evidence) == (
        "production",
        "retired",
        f"superseded by {second}",
        "superseded",
        "gate-7",
    )
    assert registry.get(first).entered == last
    assert [r.model_id for r in registry.list("production") if r.card.name == name] == [second]


def test_shadow_set_is_exactly_the_models_in_shadow(registry, tiny, name):
    ids = [_register(registry, tiny, name, str(v)) for v in range(4)]
    _move(registry, ids[1], "shadow")
    _move(registry, ids[2], "shadow")
    _move(registry, ids[3], "shadow", "failed")
    mine = {c.model_id for c in registry.shadow_set() if c.name == name}
    assert mine == {ids[1], ids[2]}


def test_record_event_notes_without_changing_state(registry, tiny, name):
    model_id = _register(registry, tiny, name)
    _move(registry, model_id, "shadow")
    note = registry.record_event(model_id, "worker-1", "unloaded after 5 failed batches")
    assert (note.from_state, note.to_state) == ("shadow", "shadow")
    assert registry.get(model_id).state == "shadow"
    assert registry.history(model_id)[-1].reason == "unloaded after 5 failed batches"


def _race(registry_url, store, model_ids, targets, monkeypatch):
    """Both transitions read the model before either writes (where the database lets them)."""
    barrier = threading.Barrier(len(targets), timeout=2)
    real_check = registry_module._check_move

    def check_then_wait(*args):
        real_check(*args)
        # PostgreSQL's row lock keeps the other one out until we commit: the barrier breaks
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()

    monkeypatch.setattr(registry_module, "_check_move", check_then_wait)
    results: dict[int, object] = {}

    def run(index: int, target_id: str, target: str) -> None:
        own = ModelRegistry(registry_url, store)
        try:
            proof = passing(target_id)
            results[index] = own.transition(target_id, target, "ci", f"race to {target}", proof)
        except RegistryError as exc:
            results[index] = exc
        finally:
            own.close()

    threads = [
        threading.Thread(target=run, args=(i, mid, t))
        for i, (mid, t) in enumerate(zip(model_ids, targets, strict=True))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    monkeypatch.setattr(registry_module, "_check_move", real_check)
    return results


def test_concurrent_transitions_on_one_model_cannot_both_win(
    registry, registry_url, store, tiny, name, monkeypatch
):
    model_id = _register(registry, tiny, name)
    _move(registry, model_id, "shadow")
    targets = ["passed", "failed"]
    results = _race(registry_url, store, [model_id, model_id], targets, monkeypatch)
    winners = [targets[i] for i, r in results.items() if not isinstance(r, Exception)]
    assert len(results) == 2 and len(winners) == 1, results
    assert registry.get(model_id).state == winners[0]
    assert [e.to_state for e in registry.history(model_id)] == ["registered", "shadow", winners[0]]


def test_concurrent_promotions_leave_one_production_model(
    registry, registry_url, store, tiny, name, monkeypatch
):
    ids = [_register(registry, tiny, name, v) for v in ("1", "2")]
    for model_id in ids:
        _move(registry, model_id, "shadow", "passed")
    results = _race(registry_url, store, ids, ["production", "production"], monkeypatch)
    winners = [ids[i] for i, r in results.items() if not isinstance(r, Exception)]
    assert len(results) == 2 and len(winners) == 1, results
    production = [r.model_id for r in registry.list("production") if r.card.name == name]
    assert production == winners
    loser = next(i for i in ids if i not in winners)
    assert registry.get(loser).state == "passed"


# --- refusals: each one line, nothing half-registered ---------------------------------------


def _assert_nothing_left(registry: ModelRegistry, store: LocalStore, name: str) -> None:
    assert [r for r in registry.list() if r.card.name == name] == []
    assert store.list(f"models/{name}/") == []


def _refused(registry, store, name, path, match, **kwargs):
    with pytest.raises(ModelError, match=match) as refused:
        registry.register(path, name, "1", canary=CANARY, **kwargs)
    assert "\n" not in str(refused.value)
    _assert_nothing_left(registry, store, name)


def test_refuses_a_file_that_does_not_parse(registry, store, tmp_path, name):
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"this is not a protobuf \xff\xfe")
    _refused(registry, store, name, path, "does not parse as ONNX")


def test_refuses_a_model_that_does_not_load(registry, store, tmp_path, name):
    model = onnx.load(write_tiny_model(tmp_path / "ok.onnx", "columns"))
    model.graph.node[1].op_type = "NoSuchOperator"
    path = tmp_path / "bad.onnx"
    path.write_bytes(model.SerializeToString())
    _refused(registry, store, name, path, "does not load in ONNX Runtime")


def test_refuses_a_model_that_fails_or_answers_the_wrong_shape(registry, store, tmp_path, name):
    _refused(registry, store, name, write_tiny_model(tmp_path / "f.onnx", "failing"), "failed")
    shape = write_tiny_model(tmp_path / "w.onnx", "wrong_shape")
    _refused(registry, store, name, shape, "shape")


def test_refuses_a_sha256_mismatch(registry, store, tiny, name):
    _refused(registry, store, name, tiny, "sha256 mismatch", sha256="0" * 64)


def test_refuses_an_input_that_is_no_transaction_feature(registry, store, tiny, name):
    known = [f for f in FEATURE_NAMES if f != "device_risk"]
    match = "'device_risk' matches no transaction feature"
    _refused(registry, store, name, tiny, match, feature_names=known)
    assert registry.register(tiny, name, "2", canary=CANARY, feature_names=FEATURE_NAMES)


def test_refuses_a_canary_score_that_differs(registry, store, tiny, name):
    _refused(registry, store, name, tiny, "canary score", canary_score=0.999)


def test_refuses_a_tensor_model_without_feature_order(registry, store, tmp_path, name):
    model = onnx.load(write_tiny_model(tmp_path / "t.onnx", "tensor"))
    del model.metadata_props[:]
    path = tmp_path / "no-order.onnx"
    path.write_bytes(model.SerializeToString())
    _refused(registry, store, name, path, "no feature order")


def _external(tmp_path: Path, location: str = "weights.bin") -> Path:
    folder = tmp_path / "ext"
    folder.mkdir(exist_ok=True)
    model = onnx.load(write_tiny_model(folder / "plain.onnx", "tensor"))
    path = folder / "model.onnx"
    onnx.save_model(
        model, path, save_as_external_data=True, location="weights.bin", size_threshold=0
    )
    if location != "weights.bin":
        model = onnx.load(path, load_external_data=False)
        for tensor in model.graph.initializer:
            for entry in tensor.external_data:
                if entry.key == "location":
                    entry.value = location
        path.write_bytes(model.SerializeToString())
    return path


def test_external_data_inside_the_folder_is_embedded(registry, store, tmp_path, name):
    path = _external(tmp_path)
    card = registry.register(path, name, "1", canary=CANARY)
    fetched = registry.fetch(card.model_id, tmp_path / "cache")
    embedded = onnx.load(fetched, load_external_data=False)
    assert all(not t.external_data for t in embedded.graph.initializer)
    assert OnnxScorer(card, fetched).score_canary() == card.canary_score


def test_refuses_external_data_outside_the_folder(registry, store, tmp_path, name):
    path = _external(tmp_path)
    (tmp_path / "stolen.bin").write_bytes((path.parent / "weights.bin").read_bytes())
    moved = _external(tmp_path, "../stolen.bin")
    _refused(registry, store, name, moved, "points outside the model's folder")
    absolute = _external(tmp_path, str(tmp_path / "stolen.bin"))
    _refused(registry, store, name, absolute, "not a relative path")


def test_refuses_external_data_through_a_symlink(registry, store, tmp_path, name):
    path = _external(tmp_path)
    (path.parent / "weights.bin").rename(path.parent / "real.bin")
    (path.parent / "weights.bin").symlink_to(path.parent / "real.bin")
    _refused(registry, store, name, path, "symlink")


class _FailingStore(LocalStore):
    def put(self, key: str, data: bytes) -> None:
        raise StoreError(self.uri, "disk full")


def test_a_store_failure_leaves_no_row(registry_url, tmp_path, tiny, name):
    broken = ModelRegistry(registry_url, _FailingStore(tmp_path / "broken"))
    with pytest.raises(StoreError):
        broken.register(tiny, name, "1", canary=CANARY)
    assert [r for r in broken.list() if r.card.name == name] == []
    broken.close()


# --- fetch and tampering ----------------------------------------------------------------


def test_fetch_gives_a_verified_copy_and_refuses_a_tampered_store(
    registry, store, tiny, name, tmp_path
):
    model_id = _register(registry, tiny, name)
    cache = tmp_path / "cache"
    fetched = registry.fetch(model_id, cache)
    assert fetched.read_bytes() == tiny.read_bytes()
    store.put(f"models/{name}/1/model.onnx", tiny.read_bytes() + b"\x00")
    fetched.unlink()
    with pytest.raises(ModelError, match="sha256 mismatch in the store"):
        registry.fetch(model_id, cache)


def test_a_tampered_local_file_is_refused_at_load_even_if_registered(
    registry, tiny, name, tmp_path
):
    model_id = _register(registry, tiny, name)
    record = registry.get(model_id)
    fetched = registry.fetch(model_id, tmp_path / "cache")
    other = write_tiny_model(tmp_path / "other.onnx", "columns", weight=2.0)
    fetched.write_bytes(other.read_bytes())
    with pytest.raises(ModelError, match="sha256 mismatch"):
        OnnxScorer(record.card, fetched)
    # fetch notices the stale cache and restores the registered bytes
    assert registry.fetch(model_id, tmp_path / "cache").read_bytes() == tiny.read_bytes()


def test_refuses_a_canary_the_model_cannot_score(registry, store, tmp_path, name):
    tensor = write_tiny_model(tmp_path / "t.onnx", "tensor")
    with pytest.raises(ModelError, match="canary score is not finite"):
        registry.register(tensor, name, "1", canary={"amount": 10.0})  # no device/ip risk
    _assert_nothing_left(registry, store, name)
