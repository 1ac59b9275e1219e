"""Markdown - the summary a reviewer reads first (summary.md): the same page as report.html,
without the figures (their titles are listed; report.html holds them)."""

from __future__ import annotations

from analysis.report.escape import md_code, md_inline, md_words
from analysis.report.page import Block, Bullets, Figure, Page, Paragraph, Section, Table


def render(page: Page) -> str:
    lines = [f"# {md_inline(page.title)}", "", f"## {md_inline(page.verdict_title)}", ""]
    for verdict in page.verdicts:
        head = f"- **{md_words(verdict.status)}** {md_code(verdict.candidate)}"
        lines.append(head + (f": {md_inline(verdict.detail)}" if verdict.detail else ""))
    lines += [f"- {md_inline(item)}" for item in page.outcome]
    lines += ["", *[f"- {md_inline(fact)}" for fact in page.facts]]
    for section in page.sections:
        lines += _section(section, 2)
    return "\n".join(lines) + "\n"


def _section(section: Section, level: int) -> list[str]:
    lines = ["", f"{'#' * level} {md_inline(section.title)}"]
    for block in section.blocks:
        lines += ["", *_block(block)]
    for child in section.children:
        lines += _section(child, min(level + 1, 6))
    return lines


def _block(block: Block) -> list[str]:
    if isinstance(block, Paragraph):
        return [md_inline(block.parts)]
    if isinstance(block, Bullets):
        return [f"- {md_inline(item)}" for item in block.items]
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Figure):
        return [f"Figure (in report.html): {md_inline(block.title)}"]
    raise TypeError(f"unknown block {type(block).__name__}")


def _table(table: Table) -> list[str]:
    header = "| " + " | ".join(md_words(h) for h in table.header) + " |"
    lines = [header, "|" + "---|" * len(table.header)]
    for row in table.rows:
        lines.append("| " + " | ".join(md_inline((cell,), in_table=True) for cell in row) + " |")
    if table.note:
        lines += ["", md_inline(table.note)]
    return lines
