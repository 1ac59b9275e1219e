"""Who may import whom: the shared core stands alone, each stage on the core, the top floor last.

Floors, bottom up: the shared core (shadow/, less the two folders below and the `python -m
shadow` door), the stages (producers/, consumers/, analysis/), the stand-in kit (shadow/kit/)
and the top floor (shadow/app/: the command line and the demo). A module may import its own
floor's modules (a stage: its own stage's) and any floor below it, never one above. Every
import statement counts, those inside functions and under TYPE_CHECKING too.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("shadow", "producers", "consumers", "analysis")
STAGES = ("producers", "consumers", "analysis")
DOOR = "shadow.__main__"
"""`python -m shadow` and the console script: the one core-side module that opens the top floor."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    """Every module of the four packages, by dotted name."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[module_name(path)] = path
    return found


def floor(module: str) -> str:
    """core, a stage's name, kit or app."""
    if module == DOOR or module.startswith("shadow.app"):
        return "app"
    if module.startswith("shadow.kit"):
        return "kit"
    top = module.split(".")[0]
    return top if top in STAGES else "core"


def imports(path: Path, module: str) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import of our own packages in the file."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from shadow.kit import synthetic` imports shadow.kit.synthetic
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for name in names:
            if name.split(".")[0] in PACKAGES:
                yield node.lineno, name


def allowed(importer: str, imported: str) -> bool:
    """The rule: the core imports only the core; a stage its own stage and the core; the kit
    the kit, the stages and the core; the top floor anything."""
    mine, theirs = floor(importer), floor(imported)
    if mine == "app":
        return True
    if mine == "kit":
        return theirs != "app"
    if mine in STAGES:
        return theirs in (mine, "core")
    return theirs == "core"


def violations(rule: Callable[[str, str], bool] = allowed) -> list[str]:
    found = []
    for module, path in modules().items():
        for line, name in imports(path, module):
            if not rule(module, name):
                where = path.relative_to(ROOT)
                found.append(f"{where}:{line} ({floor(module)}) imports {name} ({floor(name)})")
    return found


def test_every_module_imports_only_its_own_floor_and_those_below() -> None:
    assert violations() == []


def monitor_apart(importer: str, imported: str) -> bool:
    """The monitor (consumers.monitor) and the worker share the consumers folder, not code."""
    if not (importer.startswith("consumers") and imported.startswith("consumers.")):
        return True
    inside = importer.startswith("consumers.monitor")
    return inside == imported.startswith("consumers.monitor")


def test_the_monitor_and_the_worker_import_nothing_of_each_other() -> None:
    assert violations(monitor_apart) == []


@pytest.mark.parametrize(
    ("importer", "imported", "ok"),
    [
        ("shadow.clients", "shadow.kit.dev.kafka", False),
        ("shadow.registry_checks", "shadow.kit.synthetic", False),
        ("shadow.topics", "consumers.publisher", False),
        ("shadow.scorer", "shadow.app.cli", False),
        ("producers.tap", "consumers.worker", False),
        ("producers.replay", "shadow.kit.live_service", False),
        ("analysis.run", "shadow.app.demo.run", False),
        ("shadow.kit.live_service", "shadow.app.cli.common", False),
        ("shadow.kit.live_service", "producers.tap", True),
        ("shadow.app.cli.tap", "shadow.kit.live_service", True),
        ("shadow.__main__", "shadow.app.cli", True),
        ("consumers.worker", "shadow.prediction_store", True),
    ],
)
def test_the_rule_refuses_what_it_must(importer: str, imported: str, ok: bool) -> None:
    assert allowed(importer, imported) is ok


def test_imports_are_found_wherever_they_are(tmp_path: Path) -> None:
    code = (
        "from typing import TYPE_CHECKING\n"
        "import shadow.settings\n"
        "from shadow.kit import synthetic\n"
        "if TYPE_CHECKING:\n"
        "    from consumers.worker import ShadowWorker\n"
        "def late():\n"
        "    from shadow.app.cli import main\n"
        "from . import errors\n"
    )
    path = tmp_path / "probe.py"
    path.write_text(code)
    found = {name for _line, name in imports(path, "shadow.probe")}
    assert {
        "shadow.settings",
        "shadow.kit.synthetic",
        "consumers.worker.ShadowWorker",
        "shadow.app.cli.main",
        "shadow.errors",
    } <= found


def test_the_floors_are_where_the_architecture_says() -> None:
    names = modules()
    assert floor("shadow.envelope") == "core" and "shadow.envelope" in names
    assert floor("shadow.kit.dev.kafka") == "kit" and "shadow.kit.dev.kafka" in names
    assert floor("shadow.app.cli") == "app" and "shadow.app.cli" in names
    assert floor("consumers.monitor.app") == "consumers" and "consumers.monitor.app" in names
    stand_ins = ("synthetic", "tiny_models", "reference_models", "sample_store", "dev", "cli")
    assert [n for n in names if n.split(".")[-1] in stand_ins and floor(n) == "core"] == []
