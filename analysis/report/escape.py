"""Escape - text for Markdown that stays text: our wording escaped, data values as code spans.

GitHub-flavoured Markdown turns much more than `<` and `|` into structure: `[x](url)` links,
`![](url)` images, `www.x.y` and `a@b.c` autolinks (even through backslash escapes), `#`
headings, and a newline ends a table row. A code span is the one inline form whose content is
never parsed (no HTML, no entities, no links, no autolinks), so every value that came from
traffic or files is written as one, with a fence longer than any backtick run inside it.
"""

from __future__ import annotations

import re

from analysis.report.page import Code, Mark, Part, Text

_LINE_BREAKS = re.compile(r"[\r\n\x0b\x0c\x85\u2028\u2029]+")
_PUNCTUATION = re.compile(r"([\\`*_\[\]<>#!|~$&])")
_TICKS = re.compile(r"`+")


def one_line(value: str) -> str:
    """The value on one line: a line break inside a table row or a heading would end it."""
    return _LINE_BREAKS.sub(" ", value.replace("\x00", "\ufffd"))


def md_words(value: str) -> str:
    """Our own wording (labels, numbers), every character that could start Markdown structure
    escaped: emphasis, code, links and images, HTML, headings, table cells, entities, math."""
    return _PUNCTUATION.sub(r"\\\1", one_line(value))


def md_code(value: str, in_table: bool = False) -> str:
    """A data value as a code span (verbatim when rendered); `|` escaped inside a table, where
    GitHub splits cells before it reads code spans (and unescapes `\\|` inside them)."""
    value = one_line(value) or " "  # an empty value: a code span holding one space
    if in_table:
        value = value.replace("|", "\\|")
    runs = [len(run) for run in _TICKS.findall(value)]
    fence = "`" * (max(runs, default=0) + 1)
    if value[0] in "` " or value[-1] in "` ":
        value = f" {value} "  # the parser strips one space each side: the value keeps its own
    return f"{fence}{value}{fence}"


def md_part(part: Part, in_table: bool = False) -> str:
    if isinstance(part, Code):
        return md_code(part.text, in_table)
    if isinstance(part, Mark):
        return f"**{md_words(part.text)}**"
    return md_words(part)


def md_inline(parts: Text, in_table: bool = False) -> str:
    return "".join(md_part(p, in_table) for p in parts)
