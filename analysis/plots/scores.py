"""Score plots - histograms on log-spaced bins and a QQ plot over the whole range, with the
live threshold and the candidate's cut at the live alert rate drawn on both."""

from __future__ import annotations

from typing import Any

from analysis.plots import CANDIDATE, LIVE, MATCHED, figure, label, png

FLOOR = 1e-12
"""The lowest a score is drawn on log axes when none is positive (0 has no place on a log
scale: a score of 0 is drawn at the smallest positive quantile)."""


def histogram(
    model: str, distribution: dict[str, Any], threshold: float, matched: float | None
) -> bytes:
    """Share of transactions per score bin, live and candidate on the same bins."""
    hist = distribution["histogram"]
    fig, axes = figure(6.0, 4.0)
    ax = axes[0][0]
    for name, colour, who in (("live", LIVE, "live"), ("candidate", CANDIDATE, label(model))):
        total = max(sum(hist[name]), 1)
        ax.stairs([c / total for c in hist[name]], hist["edges"], color=colour, label=who)
    if hist.get("scale") == "log":
        ax.set_xscale("log")
    ax.set_yscale("log")
    _thresholds(ax.axvline, threshold, _finite(matched))
    ax.set_xlabel("score" + (" (log scale)" if hist.get("scale") == "log" else ""))
    ax.set_ylabel("share of transactions (log scale)")
    ax.set_title("Score distribution")
    ax.legend(fontsize="small")
    return png(fig)


def qq(model: str, distribution: dict[str, Any], threshold: float, matched: float | None) -> bytes:
    """Candidate quantiles against live's at the same levels, log-log, minimum to maximum."""
    points = distribution["qq"]
    floor = min((v for v in points["live"] + points["candidate"] if v > 0), default=FLOOR)
    live = [max(v, floor) for v in points["live"]]
    cand = [max(v, floor) for v in points["candidate"]]
    fig, axes = figure(5.0, 4.0)
    ax = axes[0][0]
    ax.plot(live, cand, ".", color=CANDIDATE, markersize=4, label="quantiles (0 to 100 %)")
    low, high = min(live + cand), max(live + cand)
    ax.plot([low, high], [low, high], color="grey", linewidth=0.8, label="same distribution")
    ax.axvline(threshold, color=LIVE, linestyle="--", label=f"live threshold {threshold:.4g}")
    ax.axhline(threshold, color=CANDIDATE, linestyle="--", label="live threshold on candidate")
    matched = _finite(matched)
    if matched is not None:
        ax.axhline(matched, color=MATCHED, linestyle=":", label=f"cut at live's rate {matched:.4g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("live score quantile (log scale)")
    ax.set_ylabel(f"{label(model)} score quantile (log scale)")
    ax.set_title("QQ plot")
    ax.legend(fontsize="x-small", loc="upper left")
    return png(fig)


def _finite(value: float | None) -> float | None:
    """A cut that can be drawn on a log axis (None: live raised no alert)."""
    return value if isinstance(value, int | float) and 0 < value < float("inf") else None


def _thresholds(draw: Any, threshold: float, matched: float | None) -> None:
    draw(threshold, color=LIVE, linestyle="--", label=f"live threshold {threshold:.4g}")
    if matched is not None:
        draw(matched, color=MATCHED, linestyle=":", label=f"cut at live's rate {matched:.4g}")
