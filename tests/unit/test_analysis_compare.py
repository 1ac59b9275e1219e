"""Comparison over a local store: coverage, errors, dedupe, latency, segments, time bins,
reports."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import roc_auc_score

from analysis.compare import Comparison
from analysis.evidence import build_evidence, candidate_metrics, evidence_id, write_evidence
from analysis.judgement import judge
from analysis.metrics import psi
from analysis.policy import load_policy
from analysis.run import publish
from analysis.window import parse_window
from shadow.errors import UsageError
from shadow.kit.sample_store import (
    ModelScores,
    scenario,
    write_features,
    write_labels,
    write_predictions,
)
from shadow.objectstore import LocalStore
from shadow.predictions import LABEL_SCHEMA, ROLE_LIVE, labels_key
from shadow.settings import AnalysisSettings

N = 6000
DAY0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
SETTINGS = AnalysisSettings(min_segment_rows=200, bootstrap_samples=50, bootstrap_rows=3000)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    """Live, a good candidate (10 % failures, 5 % not scored), a shifted one, labels, features."""
    sc = scenario(N, seed=5, hours=6)
    store = LocalStore(tmp_path_factory.mktemp("store"))
    good = sc.candidate(0.8)
    good[::10] = np.nan  # every 10th transaction fails on the good candidate
    skip = np.zeros(N, bool)
    skip[1::20] = True  # 5 % never reach it
    latency = np.random.default_rng(1).gamma(2.0, 400.0, N).astype(np.float32)
    models = [
        ModelScores("live@7", sc.live, role=ROLE_LIVE, latency_us=latency),
        ModelScores("good@1", good, latency_us=latency * 2, skip=skip),
        ModelScores("shifted@1", sc.candidate(0.8, shift=2.0), latency_us=latency),
    ]
    write_predictions(store, sc.ids, sc.event_time_ms, models, batch_txns=1000)
    # a replayed batch written again under another key must not count twice
    replay = [m.head(1000) for m in models]
    write_predictions(store, sc.ids[:1000], sc.event_time_ms[:1000], replay, topic="replay")
    write_labels(store, sc.ids, sc.labels, sc.amounts)
    write_features(store, sc.ids, sc.event_time_ms, {"merchant_category": sc.merchant_category})
    body = Comparison(store, DAY0, DAY0 + dt.timedelta(days=1), settings=SETTINGS).run()
    return sc, store, models, latency, body


def test_counts_coverage_and_error_rate_after_dedupe(world) -> None:
    _, _, _, _, body = world
    assert body["transactions"] == N
    assert body["live_models"] == ["live@7"]
    good = body["candidates"]["good@1"]
    scored_rows = N - N // 20
    failed = len([i for i in range(0, N, 10) if i % 20 != 1])
    assert good["scored_rows"] == scored_rows
    assert good["errors"] == failed
    assert good["error_rate"] == pytest.approx(failed / scored_rows)
    assert good["transactions"] == scored_rows - failed
    assert good["coverage"] == pytest.approx((scored_rows - failed) / N)


def test_latency_distribution_per_model(world) -> None:
    _, _, _, latency, body = world
    live = body["live_latency_ms"]
    ms = latency.astype(np.float64) / 1000
    assert live["p99"] == pytest.approx(np.quantile(ms, 0.99), rel=1e-5)
    assert live["p999"] == pytest.approx(np.quantile(ms, 0.999), rel=1e-5)
    assert live["mean"] == pytest.approx(ms.mean(), rel=1e-5)
    assert live["std"] == pytest.approx(ms.std(ddof=1), rel=1e-4)
    assert live["max"] == pytest.approx(ms.max(), rel=1e-6)
    assert body["candidates"]["good@1"]["latency_ms"]["p50"] > 1.5 * live["p50"]


def test_single_request_probes_one_per_batch_deduped(world) -> None:
    _, _, _, latency, body = world
    # sample_store writes a probe of 10x the row's latency on each batch's first row, as the
    # worker does once per chunk; the replayed first batch repeats probe 0 (deduped)
    probes = latency[::1000].astype(np.float64) * 10 / 1000
    got = body["candidates"]["shifted@1"]["request_latency_ms"]
    assert got["count"] == len(probes) == N // 1000
    assert got["p50"] == pytest.approx(np.quantile(probes, 0.5), rel=1e-5)
    assert got["p99"] == pytest.approx(np.quantile(probes, 0.99), rel=1e-5)
    assert got["max"] == pytest.approx(probes.max(), rel=1e-6)
    evidence = build_evidence(body, store="s", start=DAY0, end=None, settings={})
    flat = candidate_metrics(evidence, "shifted@1")
    assert flat["request_latency_p99_ms"] == got["p99"]


def test_shift_is_seen_and_labels_agree_with_scikit_learn(world) -> None:
    sc, _, models, _, body = world
    good, shifted = body["candidates"]["good@1"], body["candidates"]["shifted@1"]
    assert shifted["distribution"]["psi"] > 0.25 > good["distribution"]["psi"]
    assert shifted["agreement"]["flips_to_alert"] > 10 * good["agreement"]["flips_to_alert"]
    labelled = shifted["labelled"]["metrics"]["roc_auc"]
    assert labelled["live"] == pytest.approx(roc_auc_score(sc.labels, sc.live))
    assert labelled["candidate"] == pytest.approx(roc_auc_score(sc.labels, models[2].scores))
    assert labelled["delta_ci_low"] <= labelled["delta"] <= labelled["delta_ci_high"]
    assert body["labelled_transactions"] == N


def test_segments_and_hours_keep_slices_with_enough_volume(world) -> None:
    sc, _, models, _, body = world
    segments = body["candidates"]["shifted@1"]["segments"]["merchant_category"]
    names = {"grocery", "travel", "electronics", "fuel", "online"}
    assert {s["segment"] for s in segments} == names
    assert sum(s["transactions"] for s in segments) == N
    shifted = models[2].scores
    for segment in segments:
        rows = sc.merchant_category == segment["segment"]
        labels, live, cand = sc.labels[rows], sc.live[rows], shifted[rows]
        assert segment["live_roc_auc"] == pytest.approx(roc_auc_score(labels, live))
        assert segment["candidate_roc_auc"] == pytest.approx(roc_auc_score(labels, cand))
        assert segment["psi"] == pytest.approx(psi(live, cand))
        assert segment["flips_to_alert"] == np.sum((cand >= 0.5) & (live < 0.5))
        assert segment["flip_rate"] == pytest.approx(np.mean((cand >= 0.5) != (live >= 0.5)))
        assert segment["live_mean"] == pytest.approx(live.mean())
        assert segment["candidate_mean"] == pytest.approx(cand.mean())
        assert segment["mean_abs_delta"] == pytest.approx(np.mean(np.abs(cand - live)))
    timeline = body["candidates"]["shifted@1"]["timeline"]
    assert timeline["bin_seconds"] == 900  # 6 hours: 15-minute bins, at least 12 of them
    bins = timeline["bins"]
    assert len(bins) == 24 and sum(b["transactions"] for b in bins) == N
    quarter = dt.timedelta(minutes=15)
    assert [b["start"] for b in bins[:2]] == [DAY0.isoformat(), (DAY0 + quarter).isoformat()]
    first = sc.event_time_ms < (DAY0 + quarter).timestamp() * 1000
    assert bins[0]["transactions"] == np.sum(first)
    assert bins[0]["candidate_mean"] == pytest.approx(shifted[first].mean())
    flipped = (shifted[first] >= 0.5) != (sc.live[first] >= 0.5)
    assert bins[0]["flip_rate"] == pytest.approx(flipped.mean())


def test_segments_carry_alert_overlap_and_label_counts(world) -> None:
    """Per segment: live's alerts, the share of them the candidate raises when it alerts on as
    many transactions of the window as live (its window-wide top k), labelled pairs, frauds."""
    sc, _, models, _, body = world
    shifted = models[2].scores
    live_alert = sc.live >= 0.5
    k = int(live_alert.sum())
    cand_alert = shifted >= np.sort(shifted)[-k]  # continuous scores: no tie at the cut
    assert cand_alert.sum() == k
    for segment in body["candidates"]["shifted@1"]["segments"]["merchant_category"]:
        rows = sc.merchant_category == segment["segment"]
        assert segment["live_alerts"] == np.sum(live_alert & rows)
        want = np.sum(live_alert & cand_alert & rows) / np.sum(live_alert & rows)
        assert segment["alert_overlap_at_matched_rate"] == pytest.approx(want)
        assert segment["labelled"] == np.sum(rows)
        assert segment["positives"] == np.sum(sc.labels[rows])


def test_a_failed_replay_does_not_turn_a_scored_transaction_into_an_error(tmp_path: Path) -> None:
    sc = scenario(2000, seed=9, hours=1)
    store = LocalStore(tmp_path)
    cand = sc.candidate(0.5)
    models = [ModelScores("live@1", sc.live, role=ROLE_LIVE), ModelScores("c@1", cand)]
    write_predictions(store, sc.ids, sc.event_time_ms, models)
    failed = np.full(500, np.nan)  # the replay of the first 500 failed on the candidate
    replay = [models[0].head(500), ModelScores("c@1", failed)]
    write_predictions(store, sc.ids[:500], sc.event_time_ms[:500], replay, topic="replay")
    body = Comparison(store, DAY0, DAY0 + dt.timedelta(days=1), settings=SETTINGS).run()
    entry = body["candidates"]["c@1"]
    assert (entry["errors"], entry["scored_rows"], entry["transactions"]) == (0, 2000, 2000)
    assert entry["distribution"]["candidate_quantiles"]["mean"] == pytest.approx(cand.mean())


def test_a_model_promoted_inside_the_window_is_paired_by_role(tmp_path: Path) -> None:
    """b@1 is a candidate for the first half and the live model for the second: its live rows
    are live scores, its candidate rows pair with a@1's live scores (model_id alone cannot
    tell them apart)."""
    sc = scenario(2000, seed=10, hours=1)
    store = LocalStore(tmp_path)
    first, second = slice(0, 1000), slice(1000, 2000)
    cand = sc.candidate(0.5)
    before = [
        ModelScores("a@1", sc.live[first], role=ROLE_LIVE),
        ModelScores("b@1", cand[first]),
    ]
    write_predictions(store, sc.ids[first], sc.event_time_ms[first], before)
    after = [ModelScores("b@1", sc.live[second], role=ROLE_LIVE)]
    write_predictions(store, sc.ids[second], sc.event_time_ms[second], after, topic="later")
    window = (DAY0, DAY0 + dt.timedelta(days=1))
    body = Comparison(store, *window, ["b@1"], SETTINGS).run()
    assert body["transactions"] == 2000
    entry = body["candidates"]["b@1"]
    assert (entry["scored_rows"], entry["transactions"]) == (1000, 1000)
    quantiles = entry["distribution"]["live_quantiles"]
    assert quantiles["mean"] == pytest.approx(sc.live[first].mean())


def test_explicit_candidates_and_an_empty_window(world) -> None:
    _, store, _, _, _ = world
    later = DAY0 + dt.timedelta(days=3)
    with pytest.raises(UsageError, match=r"no predictions in the window .* dated 2026-01-01"):
        Comparison(store, later, later + dt.timedelta(hours=1), settings=SETTINGS).run()
    only = Comparison(
        store, DAY0, DAY0 + dt.timedelta(hours=1), ["good@1"], SETTINGS, live_threshold=0.2
    ).run()
    assert list(only["candidates"]) == ["good@1"]
    assert only["live_threshold"] == 0.2


def test_reports_are_written_and_self_contained(world, tmp_path: Path) -> None:
    _, store, _, _, body = world
    evidence = build_evidence(body, store=store.uri, start=DAY0, end=None, settings={})
    out = tmp_path / "out"
    write_evidence(evidence, out / "evidence.json")
    saved = json.loads((out / "evidence.json").read_text())
    assert saved["evidence_id"] == evidence_id(saved) == evidence["evidence_id"]
    assert saved["versions"]["duckdb"]
    judgement = judge(load_policy(), evidence)
    paths = publish(evidence, out / "evidence.json", judgement)
    summary = paths["summary"].read_text()
    verdicts = summary[: summary.index("## Candidate")]
    for verdict in judgement.verdicts:  # the verdicts open the summary, one line each
        assert f"`{verdict.candidate}`" in verdicts
    assert "`roc_auc`" in summary and "## Latency across models (ms)" in summary
    assert "the batch cost per row is in the Latency section" in summary
    page = paths["report"].read_text()
    assert page.count("data:image/png;base64,") == 2 * 4 + 1  # curves, scores, QQ, time; latency
    assert "http://" not in page and "https://" not in page
    written = json.loads(paths["verdict"].read_text())
    assert written["evidence"]["id"] == evidence["evidence_id"]
    assert sorted(written["verdicts"]) == ["good@1", "shifted@1"]


def test_window_parsing() -> None:
    now = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
    assert parse_window("24h", now) == (now - dt.timedelta(hours=24), now)
    assert parse_window("2026-01-01", now) == (DAY0, DAY0 + dt.timedelta(days=1))
    start, end = parse_window("2026-01-01T06:00..2026-01-02T00:00+01:00", now)
    assert start == DAY0 + dt.timedelta(hours=6) and end == DAY0 + dt.timedelta(hours=23)
    assert parse_window("48h..24h", now)[1] == now - dt.timedelta(hours=24)
    for bad in ("yesterday", "2026-01-02..2026-01-01", "..24h"):
        with pytest.raises(UsageError):
            parse_window(bad, now)


def test_compare_command_writes_the_outputs_and_rejects_a_bad_window(
    world, tmp_path: Path, monkeypatch, capsys
) -> None:
    import sys

    from shadow.app.cli import main

    _, store, _, _, _ = world
    monkeypatch.setenv("SHADOW__STORE__URI", str(store.root))
    monkeypatch.setenv("SHADOW__REGISTRY__URL", f"sqlite:///{tmp_path}/registry.db")
    monkeypatch.setenv("SHADOW__ANALYSIS__BOOTSTRAP_SAMPLES", "20")

    def shadow(*args: str) -> int:
        monkeypatch.setattr(sys, "argv", ["shadow", *args])
        with pytest.raises(SystemExit) as done:
            main()
        return int(done.value.code or 0)

    out = tmp_path / "out"
    args = ["compare", "-w", "2026-01-01", "-o", str(out), "--candidate", "good@1"]
    assert shadow(*args, "--live-threshold", "0.3") == 0
    evidence = json.loads((out / "evidence.json").read_text())
    assert list(evidence["candidates"]) == ["good@1"]
    assert (evidence["live_threshold"], evidence["live_threshold_source"]) == (0.3, "option")
    assert (out / "summary.md").is_file() and (out / "report.html").is_file()
    capsys.readouterr()
    assert shadow("compare", "-w", "yesterday", "-o", str(out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "neither an ISO date/time nor a span" in err[0]


def test_candidates_paired_on_different_rows_keep_their_own_labelled_figures(
    tmp_path: Path,
) -> None:
    sc = scenario(3000, seed=8, hours=1)
    store = LocalStore(tmp_path)
    a_missing, b_missing = np.zeros(3000, bool), np.zeros(3000, bool)
    a_missing[:300], b_missing[300:600] = True, True  # same count, different rows
    models = [
        ModelScores("live@1", sc.live, role=ROLE_LIVE),
        ModelScores("a@1", sc.candidate(0.5), skip=a_missing),
        ModelScores("b@1", sc.candidate(0.5), skip=b_missing),
    ]
    write_predictions(store, sc.ids, sc.event_time_ms, models)
    # labels without label_time (the column is nullable) still count
    labels = pa.table(
        {
            "txn_id": pa.array(sc.ids, pa.string()),
            "label": pa.array(sc.labels, pa.int8()),
            "amount": pa.array(sc.amounts),
            "label_time": pa.nulls(3000, pa.timestamp("ms", tz="UTC")),
        },
        schema=LABEL_SCHEMA,
    )
    buffer = io.BytesIO()
    pq.write_table(labels, buffer)
    store.put(labels_key("no-times", "2026-01-01"), buffer.getvalue())
    body = Comparison(store, DAY0, DAY0 + dt.timedelta(days=1), settings=SETTINGS).run()
    assert body["labelled_transactions"] == 3000
    for name, missing in (("a@1", a_missing), ("b@1", b_missing)):
        auc = body["candidates"][name]["labelled"]["metrics"]["roc_auc"]
        assert auc["live"] == pytest.approx(roc_auc_score(sc.labels[~missing], sc.live[~missing]))
