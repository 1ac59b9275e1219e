"""Bench: what writing the report adds to `shadow compare` (plots and pages, not the analysis).

    python -m bench.report_speed --json [--candidates 3] [--repeat 3]

Compares a demo-sized window (20,000 transactions: live and N candidates, labels, one segment
feature) once, judges it with the default policy, then times `publish` (verdict.json,
summary.md, report.html with every figure) `--repeat` times in one process whose imports
(matplotlib, Jinja2) are done before the first. The report's cost depends on the number of
candidates and segment features, not on the window's rows: the evidence is compact. Prints ONE
JSON line: {"candidates", "figures", "seconds", "runs", "first_seconds", "html_bytes"}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import emit


def evidence_for(root: Path, candidates: int) -> tuple[dict[str, Any], Path]:
    """A compared window of 20,000 transactions, its evidence written under root."""
    from analysis.compare import Comparison
    from analysis.evidence import build_evidence, write_evidence
    from shadow.kit.sample_store import (
        ModelScores,
        scenario,
        write_features,
        write_labels,
        write_predictions,
    )
    from shadow.objectstore import LocalStore
    from shadow.predictions import ROLE_LIVE

    sc = scenario(20_000, seed=3, hours=1 / 60)
    store = LocalStore(root / "store")
    models = [ModelScores("live@1", sc.live, role=ROLE_LIVE)]
    models += [ModelScores(f"cand{i}@1", sc.candidate(0.5 + i / 4)) for i in range(candidates)]
    write_predictions(store, sc.ids, sc.event_time_ms, models, batch_txns=2500)
    write_labels(store, sc.ids, sc.labels, sc.amounts)
    write_features(store, sc.ids, sc.event_time_ms, {"merchant_category": sc.merchant_category})
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    body = Comparison(store, start, start + dt.timedelta(days=1)).run()
    evidence = build_evidence(body, store=store.uri, start=start, end=None, settings={})
    path = root / "report" / "evidence.json"
    write_evidence(evidence, path)
    return evidence, path


def run(candidates: int, repeat: int) -> dict[str, Any]:
    from analysis.judgement import judge
    from analysis.policy import load_policy
    from analysis.run import publish

    with tempfile.TemporaryDirectory(prefix="shadow-bench-") as tmp:
        evidence, path = evidence_for(Path(tmp), candidates)
        judgement = judge(load_policy(), evidence)
        begin = time.perf_counter()
        publish(evidence, path, judgement)  # imports matplotlib and Jinja2: a process's first
        first = time.perf_counter() - begin
        runs = []
        for _ in range(repeat):
            begin = time.perf_counter()
            paths = publish(evidence, path, judgement)
            runs.append(time.perf_counter() - begin)
        page = paths["report"].read_text(encoding="utf-8")
    return {
        "candidates": candidates,
        "figures": page.count("data:image/png;base64,"),
        "seconds": round(statistics.median(runs), 3),
        "runs": [round(t, 3) for t in runs],
        "first_seconds": round(first, 3),
        "html_bytes": len(page.encode()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args()
    emit(run(args.candidates, args.repeat), args.json)


if __name__ == "__main__":
    main()
