"""Extras - which optional part of the install brings which module, for a one-line hint.

`pip install shadow-scoring` is the tap and the shared core; a command that needs a module of
an extra (pyproject's [project.optional-dependencies]) says which extra to install instead of
printing a traceback.
"""

from __future__ import annotations

from shadow.errors import DependencyMissing

DISTRIBUTION = "shadow-scoring"

EXTRA_OF = {
    "typer": "cli",
    "rich": "cli",
    "sqlalchemy": "registry",
    "onnx": "registry",
    "onnxruntime": "registry",
    "numpy": "registry",
    "pandas": "registry",
    "pyarrow": "registry",
    "boto3": "registry",
    "botocore": "registry",
    "prometheus_client": "worker",
    "duckdb": "analysis",
    "scipy": "analysis",
    "sklearn": "analysis",
    "matplotlib": "analysis",
    "jinja2": "analysis",
    "faust": "monitor",
    "cramjam": "monitor",
    "psycopg": "postgres",
    "skl2onnx": "demo",
    "lightgbm": "demo",
    "onnxmltools": "demo",
}
"""Top-level module -> the smallest extra that installs it."""


def missing_extra(exc: ModuleNotFoundError) -> DependencyMissing | None:
    """A one-line DependencyMissing for a module an extra brings; None for any other module
    (a defect, which must not be dressed up as an install hint)."""
    module = (exc.name or "").split(".")[0]
    extra = EXTRA_OF.get(module)
    if extra is None:
        return None
    return DependencyMissing(
        f"the Python module {module}",
        f"install the {extra} extra: pip install '{DISTRIBUTION}[{extra}]' (or [all])",
    )
