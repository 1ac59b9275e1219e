"""Report - summary.md and a self-contained report.html that open with the verdicts.

The page is built once (analysis.report.page) and written twice: Markdown (escape.py: data as
code spans) and HTML (html.py: Jinja2 autoescaping). Nothing from the data becomes markup.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from analysis.judgement import Judgement, Promotion
from analysis.report import html, markdown
from analysis.report.candidate import candidate_section
from analysis.report.page import Code, Page, Paragraph, Section, text
from analysis.report.verdicts import outcome, verdict_lines, verdict_title
from analysis.report.window import facts, latency_section, provenance_section

SUMMARY, REPORT = "summary.md", "report.html"


def build_page(
    evidence: dict[str, Any],
    judgement: Judgement | None = None,
    promotion: Promotion | None = None,
    *,
    figures: bool = True,
) -> Page:
    """The report of one evidence document (figures: draw the plots, else leave them out)."""
    draw: Callable[[Callable[[], bytes]], bytes | None] = (
        (lambda make: make()) if figures else (lambda make: None)
    )
    models = list(evidence.get("candidates", {}))
    anchors = {m: f"candidate-{i}" for i, m in enumerate(models, start=1)}
    found = {v.candidate: v for v in judgement.verdicts} if judgement else {}
    sections = [candidate_section(m, evidence, found.get(m), anchors[m], draw) for m in models] or [
        Section(text("Candidates"), [Paragraph(text("No candidate scored in this window."))])
    ]
    if models:
        sections.append(latency_section(evidence, draw))
    sections.append(provenance_section(evidence))
    return Page(
        title=text("Shadow comparison ", Code(str(evidence.get("evidence_id", "")))),
        verdict_title=verdict_title(judgement),
        verdicts=verdict_lines(evidence, judgement, anchors),
        outcome=outcome(promotion, judgement),
        facts=facts(evidence),
        sections=sections,
    )


def write_report(
    evidence: dict[str, Any],
    out_dir: Path,
    judgement: Judgement | None = None,
    promotion: Promotion | None = None,
) -> dict[str, Path]:
    """summary.md and report.html in out_dir (evidence.json is written by its own module)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    page = build_page(evidence, judgement, promotion)
    paths = {"summary": out_dir / SUMMARY, "report": out_dir / REPORT}
    paths["summary"].write_text(markdown.render(page), encoding="utf-8")
    paths["report"].write_text(html.render(page), encoding="utf-8")
    return paths
