"""The lean install: the wheel alone in a fresh virtual environment gives a working tap and
none of the heavy libraries; `bench` is not in it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]
SOURCES = ("pyproject.toml", "README.md", "shadow", "producers", "consumers", "analysis", "bench")
CORE = {"confluent-kafka", "msgspec", "xxhash", "pydantic", "pydantic-settings", "pyyaml"}
HEAVY = (
    "duckdb",
    "scipy",
    "sklearn",
    "matplotlib",
    "numpy",
    "pandas",
    "pyarrow",
    "onnxruntime",
    "sqlalchemy",
    "typer",
    "faust",
    "boto3",
    "prometheus_client",
)

OFFER = """
import json, sys
from producers.tap import ShadowTap
from shadow.envelope import LiveScore
from shadow.settings import load_settings

settings = load_settings(kafka={"bootstrap_servers": "127.0.0.1:1"}, tap={"sample_rate": 1.0})
tap = ShadowTap(settings)
accepted = tap.offer("t-1", {"amount": 12.5, "mcc": "5411"}, LiveScore("fraud@1", 0.1, "pass", 2.0))
tap.close(0.5)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {"numpy", "pyarrow", "pandas"})
print(json.dumps({"accepted": accepted, "stats": tap.stats(), "heavy": heavy}))
"""


def run(*command: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, cwd=cwd, check=False, timeout=900
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built from a copy of the sources (the checkout stays clean)."""
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        copy(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", out, source)
    return next(out.glob("shadow_scoring-*.whl"))


def test_the_wheel_holds_the_packages_and_not_bench(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top == {"shadow", "producers", "consumers", "analysis"}
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    requires = [
        line.removeprefix("Requires-Dist: ")
        for line in zipfile.ZipFile(wheel).read(metadata).decode().splitlines()
        if line.startswith("Requires-Dist: ")
    ]
    core = {r.split(">")[0].split("[")[0].strip().lower() for r in requires if "extra ==" not in r}
    assert core == CORE


def test_the_wheel_alone_gives_a_tap_without_heavy_libraries(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", "--disable-pip-version-check", wheel)
    found = run(
        python,
        "-c",
        "import importlib.util, json, sys; "
        f"print(json.dumps([m for m in {list(HEAVY)!r} if importlib.util.find_spec(m)]))",
        cwd=tmp_path,
    )
    assert json.loads(found.stdout) == []
    offered = json.loads(run(python, "-c", OFFER, cwd=tmp_path).stdout)
    assert offered["accepted"] is True  # taken without a broker: offer never raises or blocks
    assert offered["stats"]["offered"] == offered["stats"]["enqueued"] == 1
    assert offered["heavy"] == []
    version = run(venv / "bin" / "shadow", "--version", cwd=tmp_path)
    assert version.stdout.strip() == "shadow 0.1.0"
    needs = subprocess.run(
        [venv / "bin" / "shadow", "topics", "create"], capture_output=True, text=True, check=False
    )
    assert needs.returncode == 2
    assert needs.stderr.strip() == (
        "error: the shadow command needs the cli extra: pip install 'shadow-scoring[cli]' "
        "(or [worker], [analysis], [all])"
    )
