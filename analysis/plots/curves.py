"""Decision curves - recall against alert rate and precision against recall, live and candidate
on the same axes, read from the evidence's curves (analysis.curves: the gate's tie rule)."""

from __future__ import annotations

from typing import Any

from analysis.plots import CANDIDATE, LIVE, MATCHED, figure, label, png


def decision_curves(model: str, curves: dict[str, Any], counts: str, live_rate: float) -> bytes:
    """Two panels: recall vs alert rate (log x) with each model's point at the live threshold
    and the live alert rate marked; precision vs recall with the same points."""
    fig, axes = figure(11.0, 4.4, columns=2)
    left, right = axes[0]
    for key, colour, who in (("live", LIVE, "live"), ("candidate", CANDIDATE, label(model))):
        curve = curves.get(key) or {}
        if not curve:
            continue
        left.plot(curve["alert_rate"], curve["recall"], color=colour, label=who)
        right.plot(curve["recall"], curve["precision"], color=colour, label=who)
        point = curve.get("at_threshold")
        if point and point["alert_rate"] > 0:
            mark = f"{who} at the live threshold {point['threshold']:.4g}"
            left.plot(point["alert_rate"], point["recall"], "o", color=colour, label=mark)
            right.plot(point["recall"], point["precision"], "o", color=colour, label=mark)
    if live_rate > 0:
        left.axvline(
            live_rate, color=MATCHED, linestyle=":", label=f"live alert rate {live_rate:.3%}"
        )
    left.set_xscale("log")
    left.set_xlabel("alert rate: share of transactions alerted (log scale)")
    left.set_ylabel("recall: share of frauds alerted")
    left.set_title(f"Recall vs alert rate ({counts})")
    right.set_xlabel("recall")
    right.set_ylabel("precision: share of alerts that are fraud")
    right.set_title(f"Precision vs recall ({counts})")
    for ax in (left, right):
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small")
    return png(fig)
