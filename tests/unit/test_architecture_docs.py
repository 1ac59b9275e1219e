"""ARCHITECTURE.md and CONTRIBUTING.md stay true: every path they name exists, and every folder
of the layout is described in the architecture's map."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ("ARCHITECTURE.md", "CONTRIBUTING.md")
SUFFIXES = (".py", ".md", ".yaml", ".yml", ".json", ".toml", ".ipynb")


def tracked_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [Path(name) for name in listed if (ROOT / name).exists()]


def named_paths(text: str) -> list[str]:
    """Code spans that name a file or folder: a slash or a file suffix, no placeholder."""
    spans = re.findall(r"`([^`\n]+)`", text)
    return [
        span
        for span in spans
        if re.fullmatch(r"[\w./-]+", span)
        and ("/" in span or span.endswith(SUFFIXES))
        and not span.startswith(("http", "s3:"))
    ]


@pytest.mark.parametrize("doc", DOCS)
def test_every_path_the_document_names_exists(doc: str) -> None:
    names = {path.name for path in tracked_files()}
    paths = named_paths((ROOT / doc).read_text())
    assert len(paths) > 20
    missing = [
        path for path in paths if not ((ROOT / path).exists() if "/" in path else path in names)
    ]
    assert missing == []


def layout_folders() -> set[str]:
    """Top-level folders and their sub-folders, and every Python package at any depth."""
    folders = set()
    for path in tracked_files():
        parents = [p for p in reversed(path.parents) if str(p) != "."]
        for depth, parent in enumerate(parents):
            if parent.name == "__pycache__":
                continue
            if depth < 2 or (ROOT / parent / "__init__.py").exists():
                folders.add(parent.as_posix())
    return folders


def test_every_folder_of_the_layout_is_described() -> None:
    text = (ROOT / "ARCHITECTURE.md").read_text()
    described = set(re.findall(r"\| `([\w./-]+)/` \|", text))
    folders = layout_folders()
    assert {"shadow/kit", "shadow/app/cli", "consumers/monitor", "tests/unit"} <= folders
    assert sorted(folders - described) == []


def test_a_wrong_path_is_caught() -> None:
    assert named_paths("see `shadow/nowhere.py`, `x y`, `shadow.envelope`, `a=b/c`") == [
        "shadow/nowhere.py"
    ]
    assert not (ROOT / "shadow/nowhere.py").exists()
