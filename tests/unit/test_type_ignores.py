"""Every `# type: ignore` in the tree says why: after it on its line, or on the comment line
just above (which may cover a run of such lines below it)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("shadow", "producers", "consumers", "analysis", "bench", "tests")
IGNORE = re.compile(r"#\s*type:\s*ignore(\[[^\]]*\])?(?P<rest>.*)$")


def _unexplained(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    bad, explained = [], False
    for number, line in enumerate(lines):
        found = IGNORE.search(line)
        if found is None or "IGNORE" in line:
            explained = False
            continue
        after = found.group("rest").strip().lstrip("#").strip()
        above = lines[number - 1].strip() if number else ""
        explained = bool(after) or above.startswith("#") or explained
        if not explained:
            bad.append(f"{path.relative_to(ROOT)}:{number + 1}")
    return bad


def test_every_type_ignore_gives_its_reason() -> None:
    files = [p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py")]
    unexplained = [where for path in files for where in _unexplained(path)]
    assert not unexplained, f"type: ignore without a reason: {unexplained}"
