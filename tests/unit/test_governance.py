"""Governance on the registry: moves bound to gate evidence, overrides, rollback, thresholds, actor.

Runs on SQLite here and on PostgreSQL in tests/integration/test_registry_postgres.py (which
overrides ``registry_url``).
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
import pytest
from sqlalchemy import create_engine, text

from shadow.errors import ModelError, RegistryError, UsageError
from shadow.kit.reference_models import write_tiny_model
from shadow.registry import ModelRegistry, resolve_actor
from shadow.verdicts import read_gate_evidence, record_verdicts
from tests.unit.registry_fixtures import *  # noqa: F403 - registry_url, store, registry, name, tiny
from tests.unit.registry_fixtures import CANARY


@dataclass(frozen=True)
class Judged:
    """A gate verdict as the document needs it (the shape of analysis.policy.GateVerdict)."""

    candidate: str
    evidence_id: str
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return {"candidate": self.candidate, "passed": self.passed, "rules": []}


def _report(folder: Path, verdicts: dict[str, bool]) -> Path:
    """evidence.json and the gate's verdict.json for these models, in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    evidence_id = f"ev-{uuid.uuid4().hex[:16]}"
    evidence = {"kind": "shadow-comparison", "evidence_id": evidence_id, "candidates": {}}
    (folder / "evidence.json").write_text(json.dumps(evidence))
    judged = [Judged(m, evidence_id, passed) for m, passed in verdicts.items()]
    record_verdicts(folder / "evidence.json", judged, None)
    return folder


def _register(registry: ModelRegistry, path: Path, name: str, version: str) -> str:
    return registry.register(path, name, version, canary=CANARY, actor="ci").model_id


def _shadowed(registry: ModelRegistry, path: Path, name: str, version: str = "1") -> str:
    model_id = _register(registry, path, name, version)
    registry.transition(model_id, "shadow", "ci", "into shadow")
    return model_id


# --- evidence-bound moves ----------------------------------------------------------------------


def test_a_passing_verdict_moves_the_model_and_the_event_keeps_the_evidence_digest(
    registry, tiny, name, tmp_path
):
    model_id = _shadowed(registry, tiny, name)
    report = _report(tmp_path / "report", {model_id: True})
    proof = read_gate_evidence(report, model_id)
    event = registry.transition(model_id, "passed", "ci", "gate passed", proof)
    digest = hashlib.sha256((report / "evidence.json").read_bytes()).hexdigest()
    evidence_id = json.loads((report / "evidence.json").read_text())["evidence_id"]
    assert (event.kind, event.evidence, event.evidence_sha256) == (
        "transition",
        evidence_id,
        digest,
    )
    assert registry.history(model_id)[-1] == event
    # the same verdict is found from the folder, the verdict file or the evidence file
    for path in (report / "verdict.json", report / "evidence.json"):
        assert read_gate_evidence(path, model_id) == proof
    promoted = registry.transition(model_id, "production", "ci", "go", proof)
    assert promoted.evidence_sha256 == digest
    assert registry.get(model_id).entered == promoted


def test_moves_to_passed_or_production_without_evidence_are_refused(registry, tiny, name):
    model_id = _shadowed(registry, tiny, name)
    for evidence in (None, "ev-0123456789abcdef"):  # an id alone binds nothing
        with pytest.raises(RegistryError, match="needs the verdict of a gate") as refused:
            registry.transition(model_id, "passed", "ci", "trust me", evidence)
        assert "\n" not in str(refused.value) and "--override" in str(refused.value)
    assert registry.get(model_id).state == "shadow"
    assert len(registry.history(model_id)) == 2


def test_a_failed_or_foreign_verdict_is_refused(registry, tiny, name, tmp_path):
    model_id = _shadowed(registry, tiny, name, "1")
    other = _shadowed(registry, tiny, name, "2")
    report = _report(tmp_path / "report", {model_id: False, other: True})
    with pytest.raises(RegistryError, match="the gate did not pass it"):
        registry.transition(model_id, "passed", "ci", "x", read_gate_evidence(report, model_id))
    with pytest.raises(RegistryError, match=f"the verdict given is about {other}"):
        registry.transition(model_id, "passed", "ci", "x", read_gate_evidence(report, other))
    assert registry.get(model_id).state == "shadow"
    # a failed verdict is what a move to failed carries
    failed = registry.transition(
        model_id, "failed", "ci", "gate failed", read_gate_evidence(report, model_id)
    )
    assert failed.evidence_sha256 is not None


def test_evidence_changed_after_the_gate_or_a_model_it_did_not_judge_is_refused(name, tmp_path):
    model_id = f"{name}@1"
    report = _report(tmp_path / "report", {model_id: True})
    with pytest.raises(UsageError, match=f"does not judge {name}@2"):
        read_gate_evidence(report, f"{name}@2")
    evidence = report / "evidence.json"
    document = json.loads(evidence.read_text())
    document["candidates"] = {model_id: {"roc_auc": 0.99}}  # figures edited after the verdict
    evidence.write_text(json.dumps(document))
    with pytest.raises(UsageError, match="is not the evidence the gate judged") as refused:
        read_gate_evidence(report, model_id)
    assert "\n" not in str(refused.value)
    with pytest.raises(UsageError, match="does not exist"):
        read_gate_evidence(tmp_path / "nowhere", model_id)


def test_a_later_gate_run_on_the_same_evidence_adds_its_verdicts(name, tmp_path):
    report = _report(tmp_path / "report", {f"{name}@1": True})
    evidence_id = json.loads((report / "evidence.json").read_text())["evidence_id"]
    record_verdicts(report / "evidence.json", [Judged(f"{name}@2", evidence_id, False)], None)
    assert read_gate_evidence(report, f"{name}@1").passed
    assert not read_gate_evidence(report, f"{name}@2").passed
    with pytest.raises(UsageError, match="changed while the gate read it"):
        record_verdicts(report / "evidence.json", [Judged(f"{name}@3", "ev-other", True)], None)


def test_an_override_is_recorded_as_such_and_shown_by_list(registry, tiny, name):
    model_id = _shadowed(registry, tiny, name)
    event = registry.transition(model_id, "passed", "alice", "hotfix, gate down", override=True)
    assert (event.kind, event.reason, event.evidence) == ("override", "hotfix, gate down", None)
    [listed] = [r for r in registry.list() if r.model_id == model_id]
    assert listed.entered is not None and listed.entered.kind == "override"
    with pytest.raises(RegistryError, match="needs a reason"):
        registry.transition(model_id, "production", "alice", " ", override=True)
    with pytest.raises(RegistryError, match="--override applies only"):
        registry.transition(model_id, "retired", "alice", "x", override=True)


# --- rollback ---------------------------------------------------------------------------------


def _promote(registry: ModelRegistry, model_id: str) -> None:
    registry.transition(model_id, "shadow", "ci", "into shadow")
    registry.transition(model_id, "passed", "ci", "gate passed", override=True)
    registry.transition(model_id, "production", "ci", "promoted", override=True)


def _production(registry: ModelRegistry, name: str) -> str | None:
    record = registry.production(name)
    return record.model_id if record else None


def test_rollback_puts_back_the_previous_production_model_in_both_histories(registry, tiny, name):
    a, b, c = (_register(registry, tiny, name, v) for v in ("1", "2", "3"))
    for model_id in (a, b, c):
        _promote(registry, model_id)
    retired, restored = registry.rollback(name, "bob", "c drops recall")
    assert _production(registry, name) == b
    assert registry.get(c).state == "retired" and registry.get(a).state == "retired"
    assert (retired.model_id, retired.from_state, retired.to_state) == (c, "production", "retired")
    assert (restored.model_id, restored.from_state, restored.to_state) == (
        b,
        "retired",
        "production",
    )
    assert {retired.kind, restored.kind} == {"rollback"} and retired.at == restored.at
    assert registry.history(c)[-1] == retired and registry.history(b)[-1] == restored
    assert "c drops recall" in retired.reason and b in retired.reason and c in restored.reason
    # again: c was rolled back, so the one before b is a
    registry.rollback(name, "bob", "b too")
    assert _production(registry, name) == a
    with pytest.raises(RegistryError, match=f"no model was in production before {a}"):
        registry.rollback(name, "bob", "and again")
    assert _production(registry, name) == a


def test_rollback_is_refused_without_an_earlier_model_or_a_reason(registry, tiny, name):
    with pytest.raises(RegistryError, match="has no production model"):
        registry.rollback(name, "bob", "nothing there")
    only = _register(registry, tiny, name, "1")
    never = _register(registry, tiny, name, "2")
    registry.transition(never, "retired", "ci", "never shipped")
    _promote(registry, only)
    with pytest.raises(RegistryError, match="no model was in production before"):
        registry.rollback(name, "bob", "nothing before")
    with pytest.raises(RegistryError, match="needs a reason"):
        registry.rollback(name, "bob", "")
    assert _production(registry, name) == only and registry.get(never).state == "retired"


def test_rollback_to_a_file_that_no_longer_verifies_changes_nothing(registry, store, tiny, name):
    a, b = (_register(registry, tiny, name, v) for v in ("1", "2"))
    _promote(registry, a)
    _promote(registry, b)
    store.put(f"models/{name}/1/model.onnx", tiny.read_bytes() + b"\x00")
    before = (registry.history(a), registry.history(b))
    with pytest.raises(ModelError, match="sha256 mismatch in the store") as refused:
        registry.rollback(name, "bob", "b is bad")
    assert "\n" not in str(refused.value)
    assert _production(registry, name) == b
    assert (registry.history(a), registry.history(b)) == before


def test_two_racing_rollbacks_move_production_once(
    registry, registry_url, store, tiny, name, monkeypatch
):
    a, b, c = (_register(registry, tiny, name, v) for v in ("1", "2", "3"))
    for model_id in (a, b, c):
        _promote(registry, model_id)
    barrier = threading.Barrier(2, timeout=5)
    real_verify = ModelRegistry.verify_file

    def verify_then_wait(self, model_id):  # both have read (c, b) before either writes
        real_verify(self, model_id)
        barrier.wait()

    monkeypatch.setattr(ModelRegistry, "verify_file", verify_then_wait)
    results: list[object] = []

    def run() -> None:
        own = ModelRegistry(registry_url, store)
        try:
            results.append(own.rollback(name, "ops", "race"))
        except RegistryError as exc:
            results.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 2 and sum(isinstance(r, list) for r in results) == 1, results
    assert _production(registry, name) == b
    assert [e.kind for e in registry.history(c)].count("rollback") == 1
    assert registry.get(a).state == "retired"


# --- registry made before event kinds ---------------------------------------------------------


def _fresh_url(registry_url: str, tmp_path: Path) -> str:
    """An empty database on the same server (SQLite: a new file)."""
    if registry_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path}/old.db"
    database = f"old_{uuid.uuid4().hex[:8]}"
    engine = create_engine(registry_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {database}"))
    engine.dispose()
    return registry_url.rsplit("/", 1)[0] + f"/{database}"


OLD_TABLES = [
    "CREATE TABLE shadow_models (model_id VARCHAR(300) PRIMARY KEY, name VARCHAR(200) NOT NULL, "
    "version VARCHAR(100) NOT NULL, state VARCHAR(20) NOT NULL, sha256 VARCHAR(64) NOT NULL, "
    "object_key VARCHAR(600) NOT NULL, card TEXT NOT NULL, created_at TIMESTAMP NOT NULL, "
    "updated_at TIMESTAMP NOT NULL, row_version INTEGER NOT NULL)",
    "CREATE TABLE shadow_model_events (event_id {serial} PRIMARY KEY, model_id VARCHAR(300) "
    "NOT NULL REFERENCES shadow_models (model_id), from_state VARCHAR(20), to_state VARCHAR(20) "
    "NOT NULL, actor VARCHAR(200) NOT NULL, reason TEXT NOT NULL, evidence TEXT, "
    "at TIMESTAMP NOT NULL)",
]


def test_a_registry_made_before_event_kinds_gets_the_columns(
    registry_url, store, tiny, name, tmp_path
):
    url = _fresh_url(registry_url, tmp_path)
    serial = "INTEGER" if url.startswith("sqlite") else "SERIAL"
    engine = create_engine(url)
    with engine.begin() as conn:
        for statement in OLD_TABLES:
            conn.execute(text(statement.format(serial=serial)))
    engine.dispose()
    registry = ModelRegistry(url, store)
    try:
        model_id = _shadowed(registry, tiny, name)
        with registry._engine.begin() as conn:  # an event as the old code wrote it
            conn.execute(
                text(
                    "INSERT INTO shadow_model_events (model_id, from_state, to_state, actor, "
                    "reason, at) VALUES (:m, 'shadow', 'shadow', 'w', 'old note', :at)"
                ),
                {"m": model_id, "at": registry.history(model_id)[0].at},
            )
            conn.execute(text("UPDATE shadow_model_events SET kind = NULL"))
        kinds = [e.kind for e in registry.history(model_id)]
        assert kinds == ["registered", "transition", "note"]
        again = ModelRegistry(url, store)  # opening an upgraded registry again changes nothing
        assert again.get(model_id).state == "shadow"
        again.close()
    finally:
        registry.close()


# --- threshold and actor ----------------------------------------------------------------------


def _without_threshold(tmp_path: Path, value: str | None = None) -> Path:
    model = onnx.load(write_tiny_model(tmp_path / "plain.onnx", "columns"))
    kept = [p for p in model.metadata_props if p.key != "threshold"]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    if value is not None:
        onnx.helper.set_model_props(model, {"threshold": value})
    path = tmp_path / f"threshold-{value}.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def test_registration_needs_a_threshold_given_or_in_the_metadata(registry, store, tmp_path, name):
    plain = _without_threshold(tmp_path)
    with pytest.raises(ModelError, match=r"no decision threshold.*metadata property 'threshold'"):
        registry.register(plain, name, "1", canary=CANARY)
    assert store.list(f"models/{name}/") == []
    assert registry.register(plain, name, "1", threshold=0.08, canary=CANARY).threshold == 0.08
    carried = _without_threshold(tmp_path, "0.076")
    assert registry.register(carried, name, "2", canary=CANARY).threshold == 0.076
    assert registry.register(carried, name, "3", threshold=0.2, canary=CANARY).threshold == 0.2
    for bad, match in (("lots", "is not a number"), ("1.5", r"in \[0, 1\]")):
        with pytest.raises(ModelError, match=match):
            registry.register(_without_threshold(tmp_path, bad), name, "4", canary=CANARY)
    with pytest.raises(ModelError, match=r"--threshold\) must be a number in \[0, 1\]"):
        registry.register(plain, name, "4", threshold=float("nan"), canary=CANARY)


def test_the_actor_is_the_one_given_else_github_else_user_at_host(monkeypatch):
    monkeypatch.setenv("GITHUB_ACTOR", "octocat")
    assert resolve_actor("alice") == "alice"
    assert resolve_actor(None) == "octocat"
    monkeypatch.delenv("GITHUB_ACTOR")
    monkeypatch.setenv("USER", "carol")
    monkeypatch.setenv("LOGNAME", "carol")
    assert resolve_actor(None).startswith("carol@") and resolve_actor("  ").startswith("carol@")


def test_events_without_an_actor_name_the_resolved_one(registry, tiny, name, monkeypatch):
    monkeypatch.setenv("GITHUB_ACTOR", "octocat")
    model_id = registry.register(tiny, name, "1", canary=CANARY).model_id
    registry.transition(model_id, "shadow", None, "start")
    assert {e.actor for e in registry.history(model_id)} == {"octocat"}


def test_a_later_gate_run_keeps_what_the_report_added_to_the_verdict(tmp_path: Path) -> None:
    """The demo's report writes the promotion into verdict.json; the production move that
    follows records its own verdict on the same evidence and policy without losing it."""
    from shadow.verdicts import verdict_document, write_verdict

    folder = tmp_path / "report"
    folder.mkdir()
    evidence = folder / "evidence.json"
    evidence.write_text(json.dumps({"evidence_id": "ev-1"}))
    policy = tmp_path / "policy.yaml"
    policy.write_text("rules: []\n")
    first = verdict_document(evidence, [Judged("a@1", "ev-1", True), Judged("b@1", "ev-1", False)],
                             policy)  # fmt: skip
    first["promotion"] = {"model_id": "a@1"}
    write_verdict(first, evidence)
    record_verdicts(evidence, [Judged("a@1", "ev-1", True)], policy)
    kept = json.loads((folder / "verdict.json").read_text())
    assert kept["promotion"] == {"model_id": "a@1"} and sorted(kept["verdicts"]) == ["a@1", "b@1"]
