"""Page - what a report says, independent of its format: verdicts, facts, sections of blocks.

Text is a tuple of parts: a `str` is our own wording, a `Code` is a value that came from
traffic or files (a model id, a segment value, a policy name, a rule's why). The Markdown and
HTML writers escape both; a `Code` is always written as code, never as markup.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Code:
    """A value from the data: shown verbatim, as code (`prose`: a sentence, such as a rule's
    why, shown in the text font in HTML; still a code span in Markdown)."""

    text: str
    prose: bool = False


@dataclass(frozen=True)
class Mark:
    """One of our status words, emphasised (PASS, FAIL, ...); `kind` picks its colour."""

    text: str
    kind: str


Part = str | Code | Mark
Text = tuple[Part, ...]


def text(*parts: Part | None) -> Text:
    """Inline text from parts (None parts are left out)."""
    return tuple(p for p in parts if p is not None)


def plain(parts: Text) -> str:
    """The characters of a text, without any markup (alt texts, titles)."""
    return "".join(p if isinstance(p, str) else p.text for p in parts)


@dataclass(frozen=True)
class Paragraph:
    parts: Text


@dataclass(frozen=True)
class Bullets:
    items: tuple[Text, ...]


@dataclass(frozen=True)
class Table:
    """A table: every row has as many cells as the header."""

    header: tuple[str, ...]
    rows: tuple[tuple[Part, ...], ...]
    note: Text = ()

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.header):
                raise ValueError(f"a row of {len(row)} cells under {len(self.header)} columns")


@dataclass(frozen=True)
class Figure:
    title: Text
    png: bytes
    caption: Text = ()


Block = Paragraph | Bullets | Table | Figure


@dataclass
class Section:
    title: Text
    blocks: list[Block] = field(default_factory=list)
    children: list[Section] = field(default_factory=list)
    anchor: str = ""


@dataclass(frozen=True)
class VerdictLine:
    """One candidate's outcome: PASS, FAIL, INSUFFICIENT EVIDENCE or NOT JUDGED, and why."""

    status: str
    candidate: str
    detail: Text = ()
    anchor: str = ""

    @property
    def css(self) -> str:
        return self.status.split()[0].lower()


@dataclass
class Page:
    title: Text
    verdict_title: Text
    verdicts: list[VerdictLine]
    outcome: list[Text]
    facts: list[Text]
    sections: list[Section]
