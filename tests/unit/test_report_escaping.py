"""Nothing from the data becomes structure: model ids, live model ids, segment values, feature
names, policy names and rules' why texts stay text in summary.md and report.html (GitHub's own
Markdown parser, cmark-gfm, reads the summary)."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import cmarkgfm
import pytest
from cmarkgfm.cmark import Options
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.compare import Comparison
from analysis.evidence import build_evidence
from analysis.judgement import Promotion, judge
from analysis.policy import load_policy
from analysis.report import build_page, html, markdown
from shadow.kit.sample_store import (
    ModelScores,
    scenario,
    write_features,
    write_labels,
    write_predictions,
)
from shadow.objectstore import LocalStore
from shadow.predictions import ROLE_LIVE
from shadow.settings import AnalysisSettings

DAY0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
NAMES = {"live": "livemodel", "a": "candone", "b": "candtwo"}
SEGMENTS = ("grocery", "travel", "electronics", "fuel", "online")
HOSTILE = (
    "|",
    "a | b",
    "x\ny",
    "\r\n## Gate: fraud@9 PASS",
    "`",
    "``code``",
    "<script>alert(1)</script>",
    "[x](javascript:alert(1))",
    "![](http://evil.invalid/beacon.png)",
    "www.evil.invalid",
    "http://evil.invalid/x",
    "mail@evil.invalid",
    "<img src=x onerror=alert(1)>",
    "&lt;b&gt; &amp; &#60;",
    "*bold* _it_ ~~s~~ $x^2$",
    "# heading",
    "- item",
    "1. item",
    "> quote",
    "\\",
    "\u2028\u2029\x0b\x0c\x85",
    "<!-- c -->",
    "[^1]",
    "",
    " ",
    "\x00",
)


class Evidence(dict):
    """The comparison's evidence, with a short repr for Hypothesis' reports."""

    def __repr__(self) -> str:
        return f"<evidence {self.get('evidence_id')}>"


@pytest.fixture(scope="module")
def evidence(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    sc = scenario(3000, seed=4, hours=2)
    store = LocalStore(tmp_path_factory.mktemp("store"))
    models = [
        ModelScores("live@1", sc.live, role=ROLE_LIVE),
        ModelScores("a@1", sc.candidate(0.6)),
        ModelScores("b@1", sc.random_model()),
    ]
    write_predictions(store, sc.ids, sc.event_time_ms, models, batch_txns=1000)
    write_labels(store, sc.ids, sc.labels, sc.amounts)
    write_features(store, sc.ids, sc.event_time_ms, {"merchant_category": sc.merchant_category})
    options = AnalysisSettings(min_segment_rows=100, bootstrap_samples=20)
    body = Comparison(store, DAY0, DAY0 + dt.timedelta(days=1), settings=options).run()
    return Evidence(build_evidence(body, store=store.uri, start=DAY0, end=None, settings={}))


@pytest.fixture(scope="module")
def neutral(evidence) -> tuple[list[str], list[str]]:
    """The structure of both outputs with plain letters for every value."""
    summary, page = render(evidence, NAMES, list(SEGMENTS), "merchant", "default", "because")
    return structure(gfm(summary)), structure(page)


def relabel(evidence: dict[str, Any], names: dict[str, str], segments: list[str], feature: str):
    """The same evidence with other model ids, segment values and segment feature name."""
    ids = {"live@1": names["live"], "a@1": names["a"], "b@1": names["b"]}
    doc = copy.deepcopy(evidence)
    doc["live_models"] = [ids[m] for m in doc["live_models"]]
    doc["candidates"] = {ids[m]: entry for m, entry in doc["candidates"].items()}
    values = dict(zip(SEGMENTS, segments, strict=True))
    for entry in doc["candidates"].values():
        rows = entry["segments"].pop("merchant_category")
        for row in rows:
            row["segment"] = values[row["segment"]]
        entry["segments"][feature] = rows
    return doc


def render(evidence, names, segments, feature, policy_name, why) -> tuple[str, str]:
    doc = relabel(evidence, names, segments, feature)
    base = load_policy()
    rules = tuple(dataclasses.replace(r, why=why) for r in base.rules)
    policy = dataclasses.replace(base, name=policy_name, rules=rules)
    promotion = Promotion(names["a"], doc["evidence_id"], names["live"])
    page = build_page(doc, judge(policy, doc), promotion, figures=False)
    return markdown.render(page), html.render(page)


class Tags(HTMLParser):
    """The sequence of start tags of a page (its structure, without text or attributes)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.tags.append(tag)


def structure(page: str) -> list[str]:
    parser = Tags()
    parser.feed(page)
    return parser.tags


def gfm(summary: str) -> str:
    return cmarkgfm.github_flavored_markdown_to_html(summary, options=Options.CMARK_OPT_UNSAFE)


values = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=24))


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ids=st.lists(values, min_size=3, max_size=3, unique=True),
    segments=st.lists(values, min_size=5, max_size=5, unique=True),
    feature=values,
    policy_name=values,
    why=values,
)
def test_values_from_the_data_never_add_structure(
    evidence, neutral, ids, segments, feature, policy_name, why
) -> None:
    names = dict(zip(("live", "a", "b"), ids, strict=True))
    summary, page = render(evidence, names, segments, feature, policy_name, why)
    assert structure(gfm(summary)) == neutral[0]  # no heading, link, image, cell, HTML added
    assert structure(page) == neutral[1]


def test_a_forged_heading_in_a_live_model_id_stays_in_its_line(evidence, neutral) -> None:
    """Issue 15 item 8: a live model id from traffic with newlines and Markdown."""
    forged = "x\n## Gate: fraud@9: PASS\n[click](javascript:alert(1)) ![](http://evil.invalid/b)"
    names = {**NAMES, "live": forged}
    summary, page = render(evidence, names, list(SEGMENTS), "merchant", "default", "because")
    rendered = gfm(summary)
    assert "Gate: fraud@9" not in "".join(
        line for line in rendered.splitlines() if line.startswith("<h")
    )
    assert "<a " not in rendered and "<img" not in rendered and "href" not in rendered
    assert "<script" not in page and "<a " not in page and "javascript:alert" in page
    assert structure(page).count("h2") == neutral[1].count("h2")


def test_plots_take_any_label(evidence, tmp_path: Path) -> None:
    """Model ids reach matplotlib as plain text: `$` is no mathtext, a newline no second line."""
    names = {"live": "$\\frac{", "a": "a$b$c\n" + "x" * 300, "b": "\x00<b>|`"}
    doc = relabel(evidence, names, list(SEGMENTS), "$")
    page = build_page(doc, judge(load_policy(), doc), figures=True)
    pngs = [
        block.png
        for section in page.sections
        for child in [section, *section.children]
        for block in child.blocks
        if hasattr(block, "png")
    ]
    assert len(pngs) == 2 * 4 + 1 and all(png.startswith(b"\x89PNG") for png in pngs)
