"""Evidence - the JSON document a comparison produces and the gate reads, with its stable id.

The id is a hash of the document's content, so the registry's transition events point at exactly
the figures the decision was taken on.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from shadow.errors import UsageError

KIND = "shadow-comparison"
VERSION = 2
"""2: agreement at the matched rate as alert overlap and kappa, average_precision, percentile
intervals with one tie rule, labelled positives and negatives."""
_PACKAGES = ("shadow-scoring", "duckdb", "pyarrow", "numpy", "scipy", "scikit-learn")


def build_evidence(
    body: dict[str, Any],
    *,
    store: str,
    start: dt.datetime | None,
    end: dt.datetime | None,
    settings: dict[str, Any],
) -> dict[str, Any]:
    """Wrap a comparison's result with its inputs, versions, creation time and id."""
    document = {
        "kind": KIND,
        "version": VERSION,
        "created_at": dt.datetime.now(dt.UTC).isoformat(),
        "inputs": {
            "store": store,
            "window": {
                "start": start.isoformat() if start else None,
                "end": end.isoformat() if end else None,
            },
            "candidates": sorted(body.get("candidates", {})),
            "analysis_settings": settings,
        },
        "versions": versions(),
        **body,
    }
    document = _clean(document)
    document["evidence_id"] = evidence_id(document)
    return document


def evidence_id(document: dict[str, Any]) -> str:
    """`ev-` and the first 16 hex digits of the SHA-256 of the canonical JSON (id excluded)."""
    content = {k: v for k, v in document.items() if k != "evidence_id"}
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
    return f"ev-{digest[:16]}"


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "unknown"
    return found


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf become null, numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_evidence(document: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def load_evidence(path: Path) -> dict[str, Any]:
    """Read an evidence file; UsageError (exit 2) when it is missing or not evidence."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"evidence file {path} does not exist") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"evidence file {path} is not readable JSON ({exc})") from None
    if not isinstance(document, dict) or document.get("kind") != KIND:
        raise UsageError(f"{path} is not a shadow comparison evidence document")
    if document.get("version") != VERSION:
        raise UsageError(
            f"{path} is evidence version {document.get('version')!r}, this shadow reads version "
            f"{VERSION}: run `shadow compare` again on the window"
        )
    return document


def candidate_metrics(document: dict[str, Any], candidate: str) -> dict[str, float | None]:
    """The flat metric names a policy can use, for one candidate (None: not measured)."""
    entry = document.get("candidates", {}).get(candidate)
    if entry is None:
        known = ", ".join(sorted(document.get("candidates", {}))) or "none"
        raise UsageError(f"candidate {candidate} is not in the evidence (it has: {known})")
    dist, agree = entry.get("distribution") or {}, entry.get("agreement") or {}
    latency, live_latency = entry.get("latency_ms") or {}, document.get("live_latency_ms") or {}
    flat: dict[str, float | None] = {
        "transactions": entry.get("transactions"),
        "sampled": entry.get("sampled"),
        "coverage": entry.get("coverage"),
        "error_rate": entry.get("error_rate"),
    }
    for name in ("psi", "ks_statistic", "ks_pvalue", "wasserstein"):
        flat[name] = dist.get(name)
    for name in AGREEMENT_METRICS:
        flat[name] = agree.get(name)
    requests = entry.get("request_latency_ms") or {}
    for name in LATENCY_METRICS:
        flat[f"latency_{name}_ms"] = latency.get(name)
        flat[f"request_latency_{name}_ms"] = requests.get(name)
    p99, live_p99 = latency.get("p99"), live_latency.get("p99")
    flat["latency_p99_ratio"] = p99 / live_p99 if p99 is not None and live_p99 else None
    flat.update(_labelled_flat(entry.get("labelled")))
    return flat


AGREEMENT_METRICS = (
    "pearson",
    "spearman",
    "mean_abs_delta",
    "flip_rate",
    "alert_rate_diff",
    "decision_agreement_at_live_threshold",
    "kappa_at_live_threshold",
    "alert_overlap_at_matched_rate",
    "alert_jaccard_at_matched_rate",
    "kappa_at_matched_rate",
    "alert_overlap_pvalue",
    "decision_agreement_at_matched_rate",
    "top1pct_overlap",
)
LATENCY_METRICS = ("mean", "p50", "p95", "p99", "p999", "std", "max")
LABELLED_METRICS = (
    "roc_auc",
    "average_precision",
    "recall_at_live_rate",
    "precision_at_live_rate",
    "amount_recall",
)
LABELLED_PARTS = ("candidate", "ci_low", "ci_high", "delta", "delta_ci_low", "delta_ci_high")
LABEL_COUNTS = ("labelled_transactions", "labelled_positives", "labelled_negatives")
RENAMED = {
    "agreement_at_matched_rate": (
        "decision_agreement_at_matched_rate",
        "it is the share of ALL transactions decided alike, near 1 - 2 x the alert rate for "
        "any candidate; to judge agreement use alert_overlap_at_matched_rate or "
        "kappa_at_matched_rate",
    ),
    "agreement_at_live_threshold": (
        "decision_agreement_at_live_threshold",
        "it is the share of ALL transactions decided alike; to judge agreement use "
        "kappa_at_live_threshold",
    ),
    "pr_auc": ("average_precision", "it is scikit-learn's average precision (a step sum)"),
}
"""Metric names of earlier versions: a policy using one gets a one-line error naming the new
name and why it changed."""


def _labelled_flat(labelled: dict[str, Any] | None) -> dict[str, float | None]:
    """The labelled figures: None when the window had no labels (nothing measured)."""
    labelled = labelled or {}
    metrics = labelled.get("metrics") or {}
    flat: dict[str, float | None] = {
        "labelled_transactions": labelled.get("transactions"),
        "labelled_positives": labelled.get("positives"),
        "labelled_negatives": labelled.get("negatives"),
    }
    for name in LABELLED_METRICS:
        values = metrics.get(name) or {}
        flat[name] = values.get("candidate")
        for part in LABELLED_PARTS[1:]:
            key = "candidate_" + part if part.startswith("ci") else part
            flat[f"{name}_{part}"] = values.get(key)
    return flat


def labelled_metric(name: str) -> bool:
    """Whether a policy metric is measured on labels (it needs labelled positives)."""
    return any(name == m or name.startswith(m + "_") for m in LABELLED_METRICS)


def metric_names() -> set[str]:
    """Every name candidate_metrics can return: the vocabulary a policy may use."""
    names = {"transactions", "sampled", "coverage", "error_rate", "latency_p99_ratio"}
    names |= {"psi", "ks_statistic", "ks_pvalue", "wasserstein"} | set(LABEL_COUNTS)
    names |= set(AGREEMENT_METRICS) | {f"latency_{n}_ms" for n in LATENCY_METRICS}
    names |= {f"request_latency_{n}_ms" for n in LATENCY_METRICS}
    for name in LABELLED_METRICS:
        names |= {name} | {f"{name}_{part}" for part in LABELLED_PARTS[1:]}
    return names
