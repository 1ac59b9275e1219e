"""Every import in bench/ resolves, lazy ones included, and every `-m` module it starts exists:
the benches run from a checkout and no test runs them, so a moved module would break them
silently (as `shadow.dev` → `shadow.kit.dev` once did)."""

from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
OURS = ("shadow", "producers", "consumers", "analysis", "bench")


def _imports(tree: ast.AST) -> list[tuple[str, str | None]]:
    found: list[tuple[str, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.module, alias.name) for alias in node.names]
    return [(module, name) for module, name in found if module.split(".")[0] in OURS]


def _run_modules(tree: ast.AST) -> list[str]:
    """The module after "-m" in a literal command list."""
    modules = []
    for node in ast.walk(tree):
        if isinstance(node, ast.List):
            values = [e.value if isinstance(e, ast.Constant) else None for e in node.elts]
            modules += [values[i + 1] for i, v in enumerate(values[:-1]) if v == "-m"]
    return [m for m in modules if isinstance(m, str)]


@pytest.mark.parametrize("path", sorted(BENCH.glob("*.py")), ids=lambda p: p.name)
def test_every_import_of_a_bench_resolves(path: Path) -> None:
    tree = ast.parse(path.read_text())
    for module, name in _imports(tree):
        assert importlib.util.find_spec(module) is not None, f"{path.name}: no module {module}"
        if name is not None and name != "*":
            imported = importlib.import_module(module)
            assert hasattr(imported, name) or importlib.util.find_spec(f"{module}.{name}"), (
                f"{path.name}: {module} has no {name}"
            )
    for module in _run_modules(tree):
        spec = importlib.util.find_spec(module)
        assert spec is not None, f"{path.name}: runs -m {module}, which does not exist"
        if spec.submodule_search_locations:  # a package needs a __main__
            assert importlib.util.find_spec(f"{module}.__main__"), f"{module} has no __main__"
