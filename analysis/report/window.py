"""Window sections - what the whole comparison shares: its facts, latency across models (in
comparable units, with the batch cost per row apart), and the evidence's provenance."""

from __future__ import annotations

from typing import Any

from analysis.report.formats import count, number
from analysis.report.page import Code, Figure, Part, Section, Table, Text, text

LATENCY = ("count", "mean", "p50", "p95", "p99", "p999", "std", "max")


def facts(evidence: dict[str, Any]) -> list[Text]:
    inputs = evidence.get("inputs") or {}
    window = inputs.get("window") or {}
    live: list[Part] = []
    for number_, model in enumerate(evidence.get("live_models") or []):
        live += ([", "] if number_ else []) + [Code(str(model))]
    return [
        text("window ", Code(str(window.get("start"))), " to ", Code(str(window.get("end")))),
        text("store ", Code(str(inputs.get("store", "")))),
        text("live model: ", *(live or ["none"])),
        text(
            f"live threshold {number(evidence.get('live_threshold'))} (from ",
            Code(str(evidence.get("live_threshold_source"))),
            ")",
        ),
        text(
            f"sampled transactions {count(evidence.get('transactions', 0))}; labelled "
            f"{count(evidence.get('labelled_transactions', 0))}"
        ),
    ]


def latency_section(evidence: dict[str, Any], draw: Any) -> Section:
    from analysis.plots.latency import request_latency

    candidates = evidence.get("candidates", {})
    curves = [("live", evidence.get("live_latency_ms") or {})]
    curves += [(m, e.get("request_latency_ms") or {}) for m, e in candidates.items()]
    blocks: list[Any] = []
    if any((stats.get("curve") for _, stats in curves)):
        png = draw(lambda: request_latency(curves))
        if png:
            caption = text(
                "live's latency per request beside each candidate's single-request "
                "probes: the same unit, one transaction"
            )
            blocks.append(Figure(text("Single-request latency"), png, caption))
    rows: tuple[tuple[Part, ...], ...] = tuple(
        (Code(m), *_cells(e.get("latency_ms") or {})) for m, e in candidates.items()
    )
    note = text(
        "The worker's batch wall time divided by the batch's rows: a throughput cost, "
        "not the latency of one request; compare it between candidates only."
    )
    batch = Section(text("Batch cost per row (ms)"), [Table(("candidate", *LATENCY), rows, note)])
    return Section(text("Latency across models (ms)"), blocks, [batch], anchor="latency")


def _cells(stats: dict[str, Any]) -> tuple[str, ...]:
    if not stats.get("count"):
        return ("0",) + ("n/a",) * (len(LATENCY) - 1)
    return (count(stats["count"]), *tuple(number(stats.get(k), "{:.3f}") for k in LATENCY[1:]))


def provenance_section(evidence: dict[str, Any]) -> Section:
    versions = evidence.get("versions") or {}
    rows = tuple((Code(str(k)), Code(str(v))) for k, v in versions.items())
    blocks: list[Any] = [
        Table(
            ("package", "version"),
            rows,
            text(
                "evidence ",
                Code(str(evidence.get("evidence_id", ""))),
                ", created ",
                Code(str(evidence.get("created_at", ""))),
            ),
        )
    ]
    skipped = evidence.get("skipped_objects") or []
    if skipped:
        rows = tuple((Code(str(s.get("key"))), Code(str(s.get("problem")))) for s in skipped)
        blocks.append(Table(("object left out", "problem"), rows))
    return Section(text("Evidence"), blocks, anchor="evidence")
