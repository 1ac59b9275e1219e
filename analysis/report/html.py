"""HTML - report.html: one self-contained file (plots inlined as PNG data URIs), written with
Jinja2 autoescaping, so every value is text; a Content-Security-Policy forbids scripts and
any fetch beyond the page's own data URIs."""

from __future__ import annotations

import base64
import functools
from typing import Any

from analysis.report.page import Bullets, Code, Figure, Mark, Page, Paragraph, Table, plain

TEMPLATE = "report.html.j2"


@functools.cache
def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("analysis.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
    )
    kinds = {"code": Code, "mark": Mark, "paragraph": Paragraph, "bullets": Bullets}
    kinds["table"] = Table
    env.tests.update({name: _isinstance(kind) for name, kind in kinds.items()})
    env.tests["figure"] = _isinstance(Figure)
    env.filters["b64"] = lambda data: base64.b64encode(data).decode("ascii")
    env.globals["plain"] = plain
    return env


def _isinstance(kind: type) -> Any:
    return lambda value: isinstance(value, kind)


def render(page: Page) -> str:
    return _environment().get_template(TEMPLATE).render(page=page)
