"""The README stays true: its settings table is the one the code generates."""

from __future__ import annotations

import re
from pathlib import Path

from shadow.settings_reference import reference_markdown, reference_rows

README = Path(__file__).parents[2] / "README.md"


def test_readme_settings_table_matches_the_code() -> None:
    text = README.read_text(encoding="utf-8")
    start = text.index("<!-- settings-reference:start -->\n") + len(
        "<!-- settings-reference:start -->\n"
    )
    end = text.index("<!-- settings-reference:end -->")
    assert text[start:end] == reference_markdown(), "run `shadow config reference` into README.md"


def test_every_setting_has_a_description_and_an_environment_name() -> None:
    for key, env, _default, description in reference_rows():
        assert description, f"{key} has no docstring"
        assert env.startswith("SHADOW__") and env == env.upper()


def test_readme_shows_the_two_commands() -> None:
    head = README.read_text(encoding="utf-8")[:400]
    assert "make demo" in head and "make test" in head


def test_readme_shows_the_default_policy_as_it_is() -> None:
    from analysis.policy import default_policy_path

    text = README.read_text(encoding="utf-8")
    start = text.index("```yaml\n", text.index("The gate reads a YAML policy")) + len("```yaml\n")
    block = text[start : text.index("```", start)]
    assert block == default_policy_path().read_text(encoding="utf-8")


def test_readme_defines_every_metric_a_policy_may_use() -> None:
    from analysis.evidence import LABELLED_METRICS, metric_names

    text = README.read_text(encoding="utf-8")
    table = text[text.index("### Metric definitions") :]
    table = table[: table.index("**Intervals.**")]
    for name in metric_names():
        if name.endswith("_ms") and "latency_" in name and name != "latency_p99_ratio":
            name = name[: name.index("latency_") + len("latency_")] + "*_ms"
        stem = name.split("_delta")[0].split("_ci_")[0]
        if stem != name and stem in LABELLED_METRICS:  # a labelled metric's bound or delta
            assert f"`{stem}`" in table and "`<labelled>_" in table, name
        else:
            assert f"`{name}`" in table, f"{name} is not defined in the README"


def _editable_installs(text: str) -> list[str]:
    """The extras of every editable install of the project in a text (`-e '.[a,b]'`)."""
    return re.findall(r"-e '?\.\[([^\]]*)\]'?", text)


def demo_outcome(text: str) -> dict[str, tuple[str, set[str], set[str], bool]]:
    """The README's table of what `make demo` decides: verdict, the rules that block it in every
    run, those that may also block (at some hours of the day), promoted."""
    start = text.index("<!-- demo-outcome:start -->")
    rows = text[start : text.index("<!-- demo-outcome:end -->")].splitlines()[3:]
    out = {}
    for row in (r for r in rows if r.strip().startswith("|")):
        model, verdict, always, maybe, promoted = (
            c.strip() for c in row.strip().strip("|").split("|")
        )
        out[model.strip("`")] = (verdict, _rules(always), _rules(maybe), promoted == "yes")
    return out


def _rules(cell: str) -> set[str]:
    return {rule.strip().strip("`") for rule in cell.split(",") if rule.strip()}


def test_readme_demo_outcome_is_a_story_the_gate_can_tell() -> None:
    from analysis.policy import load_policy

    outcome = demo_outcome(README.read_text(encoding="utf-8"))
    assert set(outcome) == {"fraud@2", "fraud@3", "fraud@4"}
    promoted = [m for m, (*_, up) in outcome.items() if up]
    assert len(promoted) == 1 and outcome[promoted[0]][0] == "PASS"
    metrics = {rule.metric for rule in load_policy().rules}
    for verdict, always, maybe, _ in outcome.values():
        assert verdict in {"PASS", "FAIL", "INSUFFICIENT EVIDENCE"}
        assert always | maybe <= metrics and bool(always) == (verdict != "PASS")
