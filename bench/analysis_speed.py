"""Bench: the full paired comparison over N prediction rows (live + 3 candidates), local store.

    python -m bench.analysis_speed --json [--rows N]

Generates the rows (vectorised numpy/pyarrow, in the worker's layout) into a temporary store,
then times `Comparison.run()` without labels, adds a labels dataset and times it again (the
median of --repeat runs each, default 5, in one process whose imports are done before the
first; the first run in a process is the slowest: memory and DuckDB warm up). Prints
ONE JSON line: {"rows", "seconds", "rows_per_s", "seconds_with_labels", "cpu_seconds",
"cpu_seconds_with_labels", "runs", "runs_with_labels", ...}. The comparison is
everything `shadow compare` computes (pairing, dedupe, distributions, agreement, latency,
segments, hours; bootstrap CIs with labels) except drawing the report's plots.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from shadow.predictions import LABELS

MODELS = 4  # live + 3 candidates


def generate(root: Path, rows: int, seed: int = 1):
    """Write rows/4 transactions scored by live and three candidates, plus features."""
    from shadow.kit.sample_store import ModelScores, scenario, write_features, write_predictions
    from shadow.objectstore import LocalStore
    from shadow.predictions import ROLE_LIVE

    store = LocalStore(root)
    sc = scenario(rows // MODELS, seed=seed, hours=24)
    rng = np.random.default_rng(seed)
    n = len(sc.ids)

    def latency(scale: float) -> np.ndarray:
        return rng.gamma(2.0, scale, n).astype(np.float32)

    models = [ModelScores("live@1", sc.live, role=ROLE_LIVE, latency_us=latency(400))]
    for i, noise in enumerate((0.8, 1.2, 2.0)):
        models.append(ModelScores(f"cand{i}@1", sc.candidate(noise), latency_us=latency(600)))
    written = write_predictions(store, sc.ids, sc.event_time_ms, models, batch_txns=20_000)
    write_features(
        store,
        sc.ids,
        sc.event_time_ms,
        {"merchant_category": sc.merchant_category},
        batch_txns=20_000,
    )
    return store, sc, written


def run(rows: int, keep: Path | None = None, repeat: int = 5) -> dict[str, Any]:
    from shadow.kit.sample_store import write_labels
    from shadow.objectstore import LocalStore

    _import_everything()  # the process's one-time cost, not the comparison's
    with tempfile.TemporaryDirectory(prefix="shadow-bench-") as tmp:
        root = keep or Path(tmp) / "store"
        started = time.perf_counter()
        store, sc, written = generate(root, rows)
        staging = LocalStore(Path(tmp) / "labels")  # moved in place after the first timings
        write_labels(staging, sc.ids, sc.labels, sc.amounts)
        generated = time.perf_counter() - started
        transactions = len(sc.ids)
        del sc  # 2.5 M Python strings: scaffolding no analysis process would hold
        gc.collect()
        runs, cpu, body = _timed(store, repeat)
        shutil.copytree(Path(tmp) / "labels" / LABELS, root / LABELS, dirs_exist_ok=True)
        runs_labels, cpu_labels, labelled = _timed(store, repeat)
    assert body["transactions"] == transactions and labelled["labelled_transactions"] > 0
    seconds, seconds_labels = statistics.median(runs), statistics.median(runs_labels)
    return {
        "rows": written,
        "seconds": round(seconds, 3),
        "rows_per_s": round(written / seconds),
        "seconds_with_labels": round(seconds_labels, 3),
        "cpu_seconds": round(cpu, 3),
        "cpu_seconds_with_labels": round(cpu_labels, 3),
        "runs": [round(t, 3) for t in runs],
        "runs_with_labels": [round(t, 3) for t in runs_labels],
        "generate_seconds": round(generated, 3),
        "candidates": MODELS - 1,
        "repeat": repeat,
    }


def _timed(store: Any, repeat: int) -> tuple[list[float], float, dict]:
    """The wall times and the median CPU time (all threads of this process) of `repeat` full
    comparisons of the day: on a shared machine the CPU time shows the work done."""
    from analysis.compare import Comparison
    from shadow.settings import AnalysisSettings

    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    end, settings = start + dt.timedelta(days=1), AnalysisSettings()
    times, cpu = [], []
    for _ in range(repeat):
        begin, begin_cpu = time.perf_counter(), time.process_time()
        body = Comparison(store, start, end, settings=settings).run()
        times.append(time.perf_counter() - begin)
        cpu.append(time.process_time() - begin_cpu)
    return times, statistics.median(cpu), body


def _import_everything() -> None:
    """Import what a comparison imports lazily (pyarrow's datasets, which import pandas, and
    scipy's statistics: about a second), as a long-lived process or a second run has."""
    import duckdb  # noqa: F401
    import pyarrow.dataset  # noqa: F401
    import scipy.stats  # noqa: F401

    import analysis.compare  # noqa: F401


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--keep", type=Path, help="generate into this folder and keep it")
    parser.add_argument("--repeat", type=int, default=5, help="report the median of N runs")
    args = parser.parse_args()
    result = run(args.rows, args.keep, args.repeat)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>20}: {value}")


if __name__ == "__main__":
    main()
