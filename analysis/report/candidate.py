"""Candidate section - one candidate in the order a reviewer decides: verdict, paired agreement,
decision curves (with labels), score distributions, segments, time bins, latency."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from analysis.policy import GateVerdict
from analysis.report import segments
from analysis.report.formats import count, interval, number, share, signed
from analysis.report.page import Code, Figure, Mark, Paragraph, Section, Table, text
from analysis.report.verdicts import STATUS, rule_table

Draw = Callable[[Callable[[], bytes]], bytes | None]
"""Draws a figure (returns its PNG) or skips it (None): the property tests skip them."""

LATENCY = ("count", "mean", "p50", "p95", "p99", "p999", "max")


def candidate_section(
    model: str,
    evidence: dict[str, Any],
    verdict: GateVerdict | None,
    anchor: str,
    draw: Draw,
) -> Section:
    entry = evidence["candidates"][model]
    status = Mark(STATUS[verdict.status], verdict.status) if verdict else "not judged"
    section = Section(text("Candidate ", Code(model), ": ", status), anchor=anchor)
    section.children.append(_verdict(verdict))
    section.children.append(_agreement(entry, evidence["live_threshold"]))
    if (entry.get("labelled") or {}).get("metrics"):
        section.children.append(_labelled(model, entry, draw))
    if entry.get("distribution"):
        section.children.append(_scores(model, entry, evidence["live_threshold"], draw))
    for feature, rows in (entry.get("segments") or {}).items():
        section.children.append(segments.segment_section(feature, rows))
    if (entry.get("timeline") or {}).get("bins"):
        section.children.append(_timeline(model, entry["timeline"], draw))
    section.children.append(_latency(model, entry, evidence))
    return section


def _verdict(verdict: GateVerdict | None) -> Section:
    if verdict is None:
        return Section(text("Verdict"), [Paragraph(text("No policy was applied."))])
    mark = Mark(STATUS[verdict.status], verdict.status)
    return Section(text("Verdict: ", mark), [rule_table(verdict)])


def _agreement(entry: dict[str, Any], threshold: float) -> Section:
    a = entry.get("agreement") or {}
    rows = (
        ("paired transactions", count(entry.get("transactions"))),
        (
            "coverage / error rate",
            f"{share(entry.get('coverage'))} / {share(entry.get('error_rate'), 3)}",
        ),
        (
            "alert rate at the live threshold: live / candidate",
            f"{share(a.get('live_alert_rate'), 3)} / {share(a.get('candidate_alert_rate'), 3)}",
        ),
        ("flips pass to alert (candidate alerts, live passed)", count(a.get("flips_to_alert"))),
        ("flips alert to pass (live alerted, candidate passes)", count(a.get("flips_to_pass"))),
        ("flip rate", share(a.get("flip_rate"), 3)),
        ("kappa at the live threshold", number(a.get("kappa_at_live_threshold"))),
        ("alert overlap at the matched rate", number(a.get("alert_overlap_at_matched_rate"))),
        ("alert Jaccard at the matched rate", number(a.get("alert_jaccard_at_matched_rate"))),
        ("kappa at the matched rate", number(a.get("kappa_at_matched_rate"))),
        ("chance of that overlap (p-value)", number(a.get("alert_overlap_pvalue"), "{:.2g}")),
        ("top-1 % overlap", number(a.get("top1pct_overlap"))),
        ("Pearson / Spearman", f"{number(a.get('pearson'))} / {number(a.get('spearman'))}"),
        ("mean absolute score difference", number(a.get("mean_abs_delta"), "{:.5f}")),
    )
    note = text(
        f"Live threshold {threshold:.4g}. At the matched rate the candidate alerts on as many "
        f"transactions as live (its cut: {number(a.get('matched_threshold'))}); overlap is the "
        "share of live's alerts it raises too, kappa corrects it for chance."
    )
    return Section(text("Paired agreement"), [Table(("figure", "value"), rows, note)])


def _labelled(model: str, entry: dict[str, Any], draw: Draw) -> Section:
    from analysis.plots.curves import decision_curves

    labelled = entry["labelled"]
    counts = f"{labelled['transactions']:,} labelled, {labelled['positives']:,} frauds"
    words = (
        f"On the {labelled['transactions']:,} labelled transactions both models scored "
        f"({labelled['positives']:,} frauds); 95 % bootstrap intervals; delta: candidate "
        "minus live."
    )
    blocks: list[Any] = [Paragraph(text(words)), _labelled_table(labelled)]
    curves = labelled.get("curves") or {}
    if curves.get("live") or curves.get("candidate"):
        rate = float(labelled.get("live_alert_rate") or 0.0)
        png = draw(lambda: decision_curves(model, curves, counts, rate))
        if png:
            caption = text(
                "live and ",
                Code(model),
                f" on the same {counts}; dots: each model at the live threshold, dotted line: "
                "live's alert rate",
            )
            blocks.append(Figure(text("Decision curves"), png, caption))
    return Section(text(f"With labels ({counts})"), blocks)


LABELLED = ("metric", "live", "candidate", "candidate 95% CI", "delta", "delta 95% CI",
            "labelled", "frauds")  # fmt: skip


def _labelled_table(labelled: dict[str, Any]) -> Table:
    """Each labelled figure beside the labelled transactions and frauds it rests on."""
    rows = tuple(
        (
            Code(name),
            number(v.get("live")),
            number(v.get("candidate")),
            interval(v.get("candidate_ci_low"), v.get("candidate_ci_high")).replace("+", ""),
            signed(v.get("delta")),
            interval(v.get("delta_ci_low"), v.get("delta_ci_high")),
            count(labelled["transactions"]),
            count(labelled["positives"]),
        )
        for name, v in labelled["metrics"].items()
    )
    return Table(LABELLED, rows)


def _scores(model: str, entry: dict[str, Any], threshold: float, draw: Draw) -> Section:
    from analysis.plots.scores import histogram, qq

    dist = entry["distribution"]
    live_q, cand_q = dist.get("live_quantiles") or {}, dist.get("candidate_quantiles") or {}
    rows = tuple(
        (f"score {key}", number(live_q.get(key)), number(cand_q.get(key)))
        for key in ("p50", "p95", "p99", "mean")
    )
    rows += (
        ("PSI (live deciles)", "", number(dist.get("psi"))),
        (
            "KS statistic / p-value",
            "",
            f"{number(dist.get('ks_statistic'))} / {number(dist.get('ks_pvalue'), '{:.2g}')}",
        ),
        ("Wasserstein", "", number(dist.get("wasserstein"), "{:.5f}")),
    )
    blocks: list[Any] = [Table(("figure", "live", "candidate"), rows)]
    matched = (entry.get("agreement") or {}).get("matched_threshold")
    for title, plot in (("Score distribution", histogram), ("QQ plot", qq)):
        png = draw(functools.partial(plot, model, dist, threshold, matched))
        if png:
            caption = text(
                "live and ",
                Code(model),
                " on the same transactions; dashed: the live "
                "threshold, dotted: the candidate's cut at live's alert rate",
            )
            blocks.append(Figure(text(title), png, caption))
    return Section(text("Score distributions"), blocks)


def _timeline(model: str, timeline: dict[str, Any], draw: Draw) -> Section:
    from analysis.plots.timeline import timeline as plot

    bins = timeline["bins"]
    words = f"{len(bins)} bins of {timeline['bin_seconds']:,} s with enough pairs"
    blocks: list[Any] = [Paragraph(text(words + " (analysis.min_segment_rows)."))]
    png = draw(lambda: plot(model, timeline))
    if png:
        blocks.append(Figure(text("Over time"), png, text("live and ", Code(model))))
    return Section(text("Over time"), blocks)


def _latency(model: str, entry: dict[str, Any], evidence: dict[str, Any]) -> Section:
    """Comparable units only: live per request beside the candidate's single-request probes."""
    live = evidence.get("live_latency_ms") or {}
    probes = entry.get("request_latency_ms") or {}
    rows = (
        ("live, per request (the service's own)", *_latency_cells(live)),
        ("candidate, single-request probes", *_latency_cells(probes)),
    )
    note = text(
        "One transaction scored alone by the worker (features and inference); the batch "
        "cost per row is in the Latency section, a different quantity."
    )
    return Section(text("Latency (ms)"), [Table(("", *LATENCY), rows, note)])


def _latency_cells(stats: dict[str, Any]) -> tuple[str, ...]:
    if not stats.get("count"):
        return ("0",) + ("n/a",) * (len(LATENCY) - 1)
    return (count(stats["count"]), *tuple(number(stats.get(k), "{:.3f}") for k in LATENCY[1:]))
