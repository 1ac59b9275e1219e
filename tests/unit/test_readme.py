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
