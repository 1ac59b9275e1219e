"""README's install lines are the Makefile's, word for word (with the variables expanded)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[2]


def makefile_installs() -> list[str]:
    text = (ROOT / "Makefile").read_text()
    variables = {"$(VENV)": ".venv", "$(PY)": ".venv/bin/python"}
    lines = []
    for line in text.splitlines():
        if re.search(r"pip install|\.ci/promtool", line):
            command = line.strip()
            for name, value in variables.items():
                command = command.replace(name, value)
            lines.append(command)
    return lines


def test_every_install_line_of_the_makefile_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Install", 1)[1].split("## Requirements", 1)[0]
    installs = makefile_installs()
    assert len(installs) == 4  # pip itself, [all,dev], [demo], promtool
    for command in installs:
        assert command in block, command


def test_the_extras_in_the_readme_are_the_packages_extras() -> None:
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    readme = (ROOT / "README.md").read_text()
    table = readme.split("| extra | brings | for |", 1)[1].split("\n\n", 1)[0]
    documented = set(re.findall(r"^\| `([a-z]+)` \|", table, flags=re.MULTILINE))
    assert documented == set(extras) - {"dev"}
