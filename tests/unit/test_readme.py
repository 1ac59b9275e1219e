"""The README stays true: its settings table is the one the code generates."""

from __future__ import annotations

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
