"""Report - a Markdown summary and a self-contained HTML page (PNG plots inlined as base64)."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from analysis.policy import GateVerdict

_SUMMARY = (
    ("transactions", "paired transactions", "{:,.0f}"),
    ("coverage", "coverage", "{:.2%}"),
    ("error_rate", "error rate", "{:.3%}"),
)
_DIST = (
    ("psi", "PSI", "{:.4f}"),
    ("ks_statistic", "KS", "{:.4f}"),
    ("wasserstein", "Wasserstein", "{:.5f}"),
)
_AGREE = (
    ("pearson", "Pearson", "{:.4f}"),
    ("spearman", "Spearman", "{:.4f}"),
    ("mean_abs_delta", "mean |delta|", "{:.5f}"),
    ("flips_to_alert", "flips pass->alert", "{:,.0f}"),
    ("flips_to_pass", "flips alert->pass", "{:,.0f}"),
    ("alert_rate_diff", "alert-rate diff", "{:+.4%}"),
    ("kappa_at_live_threshold", "kappa @ live threshold", "{:.4f}"),
    ("alert_overlap_at_matched_rate", "alert overlap @ matched rate", "{:.3f}"),
    ("kappa_at_matched_rate", "kappa @ matched rate", "{:.4f}"),
    ("alert_overlap_pvalue", "overlap p-value (chance)", "{:.2g}"),
    ("top1pct_overlap", "top-1% overlap", "{:.3f}"),
)
_LATENCY = ("mean", "p50", "p95", "p99", "p999", "std", "max")


LATENCY_NOTE = (
    "live: the service's own latency per request; candidates: the worker's batch wall time "
    "divided by its rows, a cost per transaction rather than a single-request latency"
)


REQUEST_NOTE = (
    "one transaction at a time (at most once per worker.probe_seconds per model) scored alone "
    "by the worker, features + inference: the latency a live service would see, measured on "
    "the worker's machine"
)


def _fmt(value: Any, pattern: str) -> str:
    if value is None:
        return "n/a"
    try:
        return pattern.format(value)
    except (TypeError, ValueError):
        return str(value)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def markdown(evidence: dict[str, Any], verdicts: list[GateVerdict] | None = None) -> str:
    """The summary a reviewer reads first: window, counts, headline metrics, gate verdicts."""
    window = evidence["inputs"]["window"]
    lines = [
        f"# Shadow comparison {evidence.get('evidence_id', '')}",
        "",
        f"- window: {window['start']} .. {window['end']}",
        f"- store: {evidence['inputs']['store']}",
        f"- live model(s): {', '.join(evidence.get('live_models', [])) or 'none'}",
        f"- live threshold: {evidence.get('live_threshold')} "
        f"({evidence.get('live_threshold_source')})",
        f"- sampled transactions: {evidence.get('transactions', 0):,}; "
        f"labelled: {evidence.get('labelled_transactions', 0):,}",
        "",
    ]
    models = list(evidence.get("candidates", {}))
    if not models:
        return "\n".join([*lines, "No candidate scored a transaction in this window.", ""])
    lines += ["## Candidates", ""]
    lines += _table(["metric", *models], _metric_rows(evidence, models))
    lines += ["", "## Latency (ms)", ""]
    lines += _table(["model", *_LATENCY], _latency_rows(evidence))
    lines += ["", f"- {LATENCY_NOTE}"]
    requests = _request_rows(evidence)
    if requests:
        lines += ["", "## Single-request latency of candidates (ms)", ""]
        lines += _table(["model", "probes", *_LATENCY], requests)
        lines += ["", f"- {REQUEST_NOTE}"]
    labelled = _labelled_rows(evidence, models)
    if labelled:
        lines += ["", "## With labels (candidate - live, 95% bootstrap CI)", ""]
        lines += _table(["candidate", "metric", "live", "candidate", "delta", "CI"], labelled)
    for verdict in verdicts or []:
        lines += ["", f"## Gate: {verdict.candidate}: {verdict.summary}", ""]
        lines += _table(
            ["rule", "value", "threshold", "result"],
            [
                [r.rule.metric, _fmt(r.value, "{:.6g}"), r.rule.threshold, r.status.upper()]
                for r in verdict.results
            ],
        )
    return "\n".join(lines) + "\n"


def _metric_rows(evidence: dict[str, Any], models: list[str]) -> list[list[str]]:
    entries = [evidence["candidates"][m] for m in models]
    rows = [[label, *[_fmt(e.get(key), fmt) for e in entries]] for key, label, fmt in _SUMMARY]
    for group, specs in (("distribution", _DIST), ("agreement", _AGREE)):
        for key, label, fmt in specs:
            rows.append([label, *[_fmt((e.get(group) or {}).get(key), fmt) for e in entries]])
    return rows


def _latency_rows(evidence: dict[str, Any]) -> list[list[str]]:
    models = [("live", evidence.get("live_latency_ms") or {})]
    models += [(m, e.get("latency_ms") or {}) for m, e in evidence["candidates"].items()]
    return [[name, *[_fmt(lat.get(k), "{:.3f}") for k in _LATENCY]] for name, lat in models]


def _request_rows(evidence: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name, entry in evidence["candidates"].items():
        lat = entry.get("request_latency_ms") or {}
        if lat.get("count"):
            probes = f"{int(lat['count']):,}"
            rows.append([name, probes, *[_fmt(lat.get(k), "{:.3f}") for k in _LATENCY]])
    return rows


def _labelled_rows(evidence: dict[str, Any], models: list[str]) -> list[list[str]]:
    rows = []
    for model in models:
        metrics = ((evidence["candidates"][model].get("labelled") or {}).get("metrics")) or {}
        for name, v in metrics.items():
            low, high = (_fmt(v.get(k), "{:+.4f}") for k in ("delta_ci_low", "delta_ci_high"))
            ci = f"[{low}, {high}]"
            rows.append(
                [
                    model,
                    name,
                    _fmt(v.get("live"), "{:.4f}"),
                    _fmt(v.get("candidate"), "{:.4f}"),
                    _fmt(v.get("delta"), "{:+.4f}"),
                    ci,
                ]
            )
    return rows


def html_page(evidence: dict[str, Any], verdicts: list[GateVerdict] | None = None) -> str:
    """One HTML file with everything inline: tables from the Markdown, plots as data URIs."""
    from analysis.plots import figures

    body = [_markdown_tables_to_html(markdown(evidence, verdicts))]
    for title, png in figures(evidence):
        data = base64.b64encode(png).decode("ascii")
        body.append(
            f"<figure><img alt='{html.escape(title)}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{html.escape(title)}</figcaption></figure>"
        )
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px}"
        "figure{display:inline-block;margin:1em}"
    )
    title = html.escape(f"Shadow comparison {evidence.get('evidence_id', '')}")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n"
    )


def _markdown_tables_to_html(text: str) -> str:
    """The small Markdown subset markdown() writes: headings, bullets, pipe tables."""
    out, in_table = [], False
    for line in text.splitlines():
        if line.startswith("|"):
            cells = [html.escape(c.strip()) for c in line.strip("|").split("|")]
            if set("".join(cells)) <= set("-"):
                continue
            tag = "th" if not in_table else "td"
            out.append(
                ("<table>" if not in_table else "")
                + "<tr>"
                + "".join(f"<{tag}>{c}</{tag}>" for c in cells)
                + "</tr>"
            )
            in_table = True
            continue
        if in_table:
            out.append("</table>")
            in_table = False
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            out.append(f"<h{level}>{html.escape(line.lstrip('# '))}</h{level}>")
        elif line.startswith("- "):
            out.append(f"<p>{html.escape(line[2:])}</p>")
        elif line:
            out.append(f"<p>{html.escape(line)}</p>")
    return "\n".join(out + (["</table>"] if in_table else []))


def write_report(
    evidence: dict[str, Any], out_dir: Path, verdicts: list[GateVerdict] | None = None
) -> dict[str, Path]:
    """evidence.json, summary.md and report.html in out_dir; returns their paths."""
    from analysis.evidence import write_evidence

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "evidence": out_dir / "evidence.json",
        "summary": out_dir / "summary.md",
        "report": out_dir / "report.html",
    }
    write_evidence(evidence, paths["evidence"])
    paths["summary"].write_text(markdown(evidence, verdicts), encoding="utf-8")
    paths["report"].write_text(html_page(evidence, verdicts), encoding="utf-8")
    return paths
