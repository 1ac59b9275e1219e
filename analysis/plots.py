"""Plots - PNG figures of a comparison, drawn from the evidence document alone (matplotlib Agg)."""

from __future__ import annotations

import io
from typing import Any


def _figure(width: float = 6.0, height: float = 3.6) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height), dpi=90)


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def score_histogram(model: str, distribution: dict[str, Any]) -> bytes:
    """Live and candidate score histograms on shared bins (share of transactions, log scale)."""
    hist = distribution["histogram"]
    edges = hist["edges"]
    fig, ax = _figure()
    for name, style in (("live", "-"), ("candidate", "--")):
        total = max(sum(hist[name]), 1)
        shares = [c / total for c in hist[name]]
        ax.stairs(shares, edges, linestyle=style, label=name if name == "live" else model)
    ax.set_yscale("log")
    ax.set_xlabel("score")
    ax.set_ylabel("share of transactions")
    ax.set_title(f"Score distribution: live vs {model}")
    ax.legend()
    return _png(fig)


def qq_plot(model: str, distribution: dict[str, Any]) -> bytes:
    """Quantiles of the candidate against the live model's (1st to 99th percentile)."""
    qq = distribution["qq"]
    fig, ax = _figure(4.2, 4.2)
    ax.plot(qq["live"], qq["candidate"], ".", markersize=4)
    low, high = min(qq["live"] + qq["candidate"]), max(qq["live"] + qq["candidate"])
    ax.plot([low, high], [low, high], color="grey", linewidth=0.8)
    ax.set_xlabel("live quantile")
    ax.set_ylabel(f"{model} quantile")
    ax.set_title("QQ plot")
    return _png(fig)


def latency_cdfs(evidence: dict[str, Any]) -> bytes:
    """Latency CDF of the live model and every candidate (ms, log scale)."""
    fig, ax = _figure()
    curves = [("live", evidence.get("live_latency_ms") or {})]
    curves += [(m, e.get("latency_ms") or {}) for m, e in evidence["candidates"].items()]
    for name, latency in curves:
        curve = latency.get("curve")
        if curve:
            ax.plot([max(v, 1e-4) for v in curve["ms"]], curve["q"], label=name)
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("share of transactions")
    ax.set_title("Latency CDF per model (live: per request; candidates: per row of a batch)")
    ax.legend(fontsize="small")
    return _png(fig)


def flips_by_segment(model: str, feature: str, segments: list[dict[str, Any]]) -> bytes:
    """Decision flips at the live threshold per segment, in each direction."""
    fig, ax = _figure()
    names = [str(s["segment"]) for s in segments]
    up = [s["flips_to_alert"] for s in segments]
    down = [s["flips_to_pass"] for s in segments]
    ax.bar(names, up, label="pass -> alert")
    ax.bar(names, down, bottom=up, label="alert -> pass")
    ax.set_ylabel("transactions")
    ax.set_title(f"{model}: decision flips by {feature}")
    ax.tick_params(axis="x", labelrotation=30)
    ax.legend()
    return _png(fig)


def over_time(model: str, hours: list[dict[str, Any]]) -> bytes:
    """Mean scores and flip rate per hour."""
    import datetime as dt

    fig, ax = _figure(7.0, 3.6)
    when = [dt.datetime.fromisoformat(h["hour"]) for h in hours]
    ax.plot(when, [h["live_mean"] for h in hours], label="live mean score")
    ax.plot(when, [h["candidate_mean"] for h in hours], label=f"{model} mean score")
    ax.plot(when, [h["flip_rate"] for h in hours], label="flip rate", linestyle=":")
    ax.set_title(f"{model}: metrics per hour")
    ax.legend(fontsize="small")
    fig.autofmt_xdate()
    return _png(fig)


def figures(evidence: dict[str, Any]) -> list[tuple[str, bytes]]:
    """Every figure of the report, titled, in reading order."""
    out: list[tuple[str, bytes]] = []
    if evidence.get("candidates"):
        out.append(("Latency CDFs", latency_cdfs(evidence)))
    for model, entry in evidence.get("candidates", {}).items():
        if entry.get("distribution"):
            out.append(
                (f"{model}: score histograms", score_histogram(model, entry["distribution"]))
            )
            out.append((f"{model}: QQ plot", qq_plot(model, entry["distribution"])))
        for feature, segments in (entry.get("segments") or {}).items():
            if segments:
                figure = flips_by_segment(model, feature, segments)
                out.append((f"{model}: flips by {feature}", figure))
        if entry.get("hours"):
            out.append((f"{model}: per hour", over_time(model, entry["hours"])))
    return out
