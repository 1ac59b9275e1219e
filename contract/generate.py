"""Regenerate the contract's test vectors (contract/v1/*.json) from the Python implementation.

    .venv/bin/python contract/generate.py [--check]

Run it only when the contract changes on purpose (and then review the diff: every other
language's tests change with it). The tests never run it: they compare the code with the
committed files, so a change in behaviour fails them. --check exits 1 when the files differ
from what the code gives now.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from contract.cases import (  # noqa: E402
    DECODE_CASES,
    ENCODE_CASES,
    REDACTION_GROUPS,
    SAMPLING_IDS,
    SAMPLING_RATES,
    SAMPLING_SALTS,
)
from shadow import sampling  # noqa: E402
from shadow.envelope import DEFAULT_MAX_BYTES, LiveScore, decode, encode, make_envelope  # noqa: E402
from shadow.errors import EnvelopeError  # noqa: E402
from shadow.redaction import Redactor  # noqa: E402
from shadow.settings import WorkerSettings  # noqa: E402

FOLDER = ROOT / "contract" / "v1"

WORKER_EVENT_TIMES = WorkerSettings().event_times
"""The event_time range a worker accepts with its default settings (worker.event_time_min and
event_time_max): the verdicts are the worker's, as deployed by default."""


def sampling_vectors() -> dict[str, Any]:
    cases = []
    for salt in SAMPLING_SALTS:
        for txn_id in SAMPLING_IDS:
            h = sampling.sample_hash(txn_id, salt)
            for rate in SAMPLING_RATES:
                cases.append(_sampling_case(txn_id, salt, rate, h))
    # the boundary: u == threshold is out, u == threshold - 1 is in
    h = sampling.sample_hash("edge-1", "shadow")
    for rate in ((h >> 11) / 2**53, ((h >> 11) + 1) / 2**53):
        cases.append(_sampling_case("edge-1", "shadow", rate, h))
    return {"version": 1, "cases": cases}


def _sampling_case(txn_id: str, salt: str, rate: float, h: int) -> dict[str, Any]:
    return {
        "txn_id": txn_id,
        "salt": salt,
        "rate": rate,
        "hash_hex": f"{h:016x}",
        "hash_u64": str(h),
        "top53": h >> 11,
        "threshold": sampling.threshold(rate),
        "sampled": sampling.is_sampled(txn_id, rate, salt),
    }


def envelope_vectors() -> dict[str, Any]:
    encoded = []
    for name, txn_id, event_time, live, features in ENCODE_CASES:
        value = encode(make_envelope(txn_id, features, LiveScore(*live), event_time))
        item = {"txn_id": txn_id, "event_time": event_time, "features": features}
        item["live"] = dict(zip(("model_id", "score", "decision", "latency_ms"), live, strict=True))
        encoded.append(
            {"name": name, "input": item, "key": txn_id, "value": value.decode(), **_b64(value)}
        )
    decoded = [_decode_case(*case) for case in DECODE_CASES]
    start, end = WORKER_EVENT_TIMES
    return {
        "version": 1,
        "max_bytes": DEFAULT_MAX_BYTES,
        "event_time_range_ms": {"start": start, "end": end},
        "encode": encoded,
        "decode": decoded,
    }


def _decode_case(name: str, key: bytes | None, value: bytes, max_bytes: int) -> dict[str, Any]:
    try:
        envelope = decode(value, key, max_bytes, WORKER_EVENT_TIMES)
    except EnvelopeError as exc:
        verdict: dict[str, Any] = {"accepted": False, "reason": exc.reason}
    else:
        verdict = {"accepted": True, "envelope": json.loads(encode(envelope))}
    case: dict[str, Any] = {"name": name, "key": key.decode() if key is not None else None}
    case |= {"max_bytes": max_bytes, **_b64(value), "verdict": verdict}
    return case


def _b64(value: bytes) -> dict[str, str]:
    return {"value_base64": base64.b64encode(value).decode()}


def redaction_vectors() -> dict[str, Any]:
    groups = []
    for settings, cases in REDACTION_GROUPS:
        redactor = Redactor(
            settings["drop_fields"],
            settings["hmac_fields"],
            settings["hmac_key"].encode() if settings["hmac_key"] else None,
            settings["card_guard"],
            settings["card_guard_exempt"],
        )
        out = []
        for name, features in cases:
            try:
                out.append({"name": name, "input": features, "output": redactor.redact(features)})
            except ValueError:
                out.append({"name": name, "input": features, "refused": True})
        groups.append({"settings": settings, "cases": out})
    return {"version": 1, "groups": groups}


FILES = {
    "sampling.json": sampling_vectors,
    "envelopes.json": envelope_vectors,
    "redaction.json": redaction_vectors,
}


def render(make: Any) -> str:
    return json.dumps(make(), indent=1, ensure_ascii=False) + "\n"


def main() -> int:
    check = "--check" in sys.argv[1:]
    FOLDER.mkdir(parents=True, exist_ok=True)
    stale = []
    for name, make in FILES.items():
        path, text = FOLDER / name, render(make)
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"stale: {', '.join(stale)} (run contract/generate.py and review the diff)")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
