"""The contract's test vectors (contract/v1) against the Python tap, the topic source and the
worker's decode. The vectors are read, never regenerated here: a change in behaviour fails."""

from __future__ import annotations

import base64
import json
from itertools import groupby
from pathlib import Path
from typing import Any

import pytest

from consumers.ingest import split_batch
from producers.inline import InlineTap
from producers.topic_mapping import load_mapping
from producers.topic_transform import SourceTransform
from shadow import sampling
from shadow.envelope import LiveScore, decode
from shadow.errors import EnvelopeError
from shadow.kit.dev.process import free_port
from shadow.redaction import Redactor
from shadow.settings import Settings, WorkerSettings, load_settings

V1 = Path(__file__).parents[2] / "contract" / "v1"
SAMPLING = json.loads((V1 / "sampling.json").read_text(encoding="utf-8"))["cases"]
ENVELOPES = json.loads((V1 / "envelopes.json").read_text(encoding="utf-8"))
REDACTION = json.loads((V1 / "redaction.json").read_text(encoding="utf-8"))["groups"]
LIVE = LiveScore("fraud@7", 0.125, "pass", 3.5)
SOME_LIVE = {"model_id": "m", "score": 0.5, "decision": None, "latency_ms": 0.0}
MAPPING = """
txn_id: id
event_time: at
live: {model_id: m.model_id, score: m.score, decision: m.decision, latency_ms: m.latency_ms}
features: {under: f}
"""


def _settings(**tap: Any) -> Settings:
    return load_settings(kafka={"bootstrap_servers": f"127.0.0.1:{free_port()}"}, tap=tap)


def _tap(**tap: Any) -> tuple[InlineTap, list[bytes]]:
    """An InlineTap whose produce() call lands in a list (no broker)."""
    made = InlineTap(_settings(**tap))
    sent: list[bytes] = []
    made._kafka.produce = lambda *args: sent.append(args[1])  # (topic, value, key, ...)
    return made, sent


def _source(tmp_path: Path, **tap: Any) -> SourceTransform:
    path = tmp_path / "mapping.yaml"
    path.write_text(MAPPING)
    return SourceTransform(_settings(**tap), load_mapping(path, joined=False))


def _record(txn_id: str, features: dict[str, Any], live: dict[str, Any], at: int) -> bytes:
    return json.dumps({"id": txn_id, "at": at, "m": live, "f": features}).encode()


def _live(live: dict[str, Any]) -> LiveScore:
    return LiveScore(live["model_id"], live["score"], live["decision"], live["latency_ms"])


# -- sampling ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", SAMPLING, ids=lambda c: f"{c['txn_id'][:12]}/{c['salt']}")
def test_sampling_vectors(case: dict[str, Any]) -> None:
    h = sampling.sample_hash(case["txn_id"], case["salt"])
    assert f"{h:016x}" == case["hash_hex"] and str(h) == case["hash_u64"]
    assert h >> 11 == case["top53"]
    assert sampling.threshold(case["rate"]) == case["threshold"]
    assert sampling.is_sampled(case["txn_id"], case["rate"], case["salt"]) is case["sampled"]


def _by_settings(case: dict[str, Any]) -> tuple[str, float]:
    return case["salt"], case["rate"]


def test_the_tap_and_the_topic_source_sample_as_the_vectors_say(tmp_path: Path) -> None:
    for (salt, rate), group in groupby(sorted(SAMPLING, key=_by_settings), key=_by_settings):
        cases = list(group)
        tap, _sent = _tap(sample_rate=rate, salt=salt)
        source = _source(tmp_path, sample_rate=rate, salt=salt)
        try:
            for case in cases:
                txn_id = case["txn_id"]
                assert tap.offer(txn_id, {"a": 1}, LIVE, 1) is case["sampled"], case
                value = _record(txn_id, {"a": 1}, SOME_LIVE, 1)
                if not txn_id:  # an empty txn_id is refused before sampling (the worker would)
                    with pytest.raises(EnvelopeError, match="missing_txn_id"):
                        source.mirror(value, 1)
                    continue
                assert (source.mirror(value, 1) is not None) is case["sampled"], case
        finally:
            tap.close(0)


# -- envelopes --------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ENVELOPES["encode"], ids=lambda c: c["name"])
def test_the_tap_sends_the_exact_bytes(case: dict[str, Any]) -> None:
    given = case["input"]
    tap, sent = _tap(sample_rate=1.0)
    try:
        assert tap.offer(
            given["txn_id"], given["features"], _live(given["live"]), given["event_time"]
        )
    finally:
        tap.close(0)
    assert sent == [base64.b64decode(case["value_base64"])]
    assert sent[0].decode() == case["value"]


@pytest.mark.parametrize("case", ENVELOPES["encode"], ids=lambda c: c["name"])
def test_the_topic_source_sends_the_exact_bytes(case: dict[str, Any], tmp_path: Path) -> None:
    given = case["input"]
    source = _source(tmp_path, sample_rate=1.0)
    value = _record(given["txn_id"], given["features"], given["live"], given["event_time"])
    txn_id, sent = source.mirror(value, 1) or ("", b"")
    assert txn_id == case["key"]
    assert sent == base64.b64decode(case["value_base64"])


@pytest.mark.parametrize("case", ENVELOPES["decode"], ids=lambda c: c["name"])
def test_the_worker_gives_the_vectors_verdict(case: dict[str, Any]) -> None:
    key = case["key"].encode() if case["key"] is not None else None
    value = base64.b64decode(case["value_base64"])
    verdict = case["verdict"]
    window = ENVELOPES["event_time_range_ms"]
    event_times = (window["start"], window["end"])
    assert event_times == WorkerSettings().event_times  # the worker's default range
    try:
        envelope = decode(value, key, case["max_bytes"], event_times)
    except EnvelopeError as exc:
        assert not verdict["accepted"] and exc.reason == verdict["reason"]
    else:
        assert verdict["accepted"]
        assert json.loads(json.dumps(envelope, default=_plain)) == verdict["envelope"]
    batch = split_batch([_Message(key, value)], "t", case["max_bytes"], event_times)
    if verdict["accepted"]:
        assert len(batch.envelopes) == 1 and not batch.refused
    else:
        assert [error.reason for _, error in batch.refused] == [verdict["reason"]]


def _plain(value: Any) -> Any:
    import msgspec

    return msgspec.to_builtins(value)


class _Message:
    """A consumed record as the worker's ingest reads one (partition 0, offset 0)."""

    def __init__(self, key: bytes | None, value: bytes) -> None:
        self._key, self._value = key, value

    def error(self) -> None:
        return None

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return 0

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes:
        return self._value


# -- redaction --------------------------------------------------------------------------------

REDACTION_CASES = [(group["settings"], case) for group in REDACTION for case in group["cases"]]


def _tap_settings(settings: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in settings.items() if value is not None}


@pytest.mark.parametrize(("settings", "case"), REDACTION_CASES, ids=lambda c: c.get("name", ""))
def test_redaction_vectors(settings: dict[str, Any], case: dict[str, Any], tmp_path: Path) -> None:
    key = settings["hmac_key"].encode() if settings["hmac_key"] else None
    redactor = Redactor(
        settings["drop_fields"],
        settings["hmac_fields"],
        key,
        settings["card_guard"],
        settings["card_guard_exempt"],
    )
    features = case["input"]
    if case.get("refused"):
        with pytest.raises(ValueError):
            redactor.redact(features)
    else:
        assert redactor.redact(features) == case["output"]
    # the tap and the topic source give the same features, or refuse the record
    tap, sent = _tap(sample_rate=1.0, **_tap_settings(settings))
    try:
        tap.offer("t-1", features, LIVE, 1)
    finally:
        tap.close(0)
    source = _source(tmp_path, sample_rate=1.0, **_tap_settings(settings))
    value = _record("t-1", features, SOME_LIVE, 1)
    if case.get("refused"):
        assert sent == [] and tap.stats()["rejected"] == 1
        with pytest.raises(EnvelopeError, match="wrong_type"):
            source.mirror(value, 1)
        return
    assert decode(sent[0]).features == case["output"]
    # type: ignore below: mirror() gives a (key, value) pair for a mapped record
    assert decode(source.mirror(value, 1)[1]).features == case["output"]  # type: ignore[index]
