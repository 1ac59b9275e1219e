"""Latency plot - comparable units only: live's latency per request beside each candidate's
single-request probes (one transaction scored alone). The batch cost per row is a different
quantity and stays in its own table."""

from __future__ import annotations

from typing import Any

from analysis.plots import figure, label, png


def request_latency(curves: list[tuple[str, dict[str, Any]]]) -> bytes:
    """CDFs (ms, log x) of (name, latency figures with a curve) pairs; the first is live."""
    fig, axes = figure(7.0, 4.2)
    ax = axes[0][0]
    for number, (name, stats) in enumerate(curves):
        curve = stats.get("curve") or {}
        if not curve:
            continue
        who = "live (per request)" if number == 0 else f"{label(name)} (probes)"
        who += f", n={int(stats.get('count', 0)):,}"
        ax.plot([max(v, 1e-3) for v in curve["ms"]], curve["q"], label=who)
    ax.set_xscale("log")
    ax.set_xlabel("latency of one request (ms, log scale)")
    ax.set_ylabel("share of requests at or below")
    ax.set_title("Single-request latency")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="lower right")
    return png(fig)
