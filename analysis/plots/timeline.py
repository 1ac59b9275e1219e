"""Time plots - the window's time bins as points (one bin shows as one point, never an empty
line), mean scores on one panel and the flip rate on another."""

from __future__ import annotations

import datetime as dt
from typing import Any

from analysis.plots import CANDIDATE, LIVE, figure, label, png


def timeline(model: str, timeline: dict[str, Any]) -> bytes:
    bins = timeline["bins"]
    width = dt.timedelta(seconds=timeline["bin_seconds"])
    when = [dt.datetime.fromisoformat(b["start"]) + width / 2 for b in bins]
    fig, axes = figure(11.0, 3.8, columns=2)
    scores, flips = axes[0]
    scores.plot(when, [b["live_mean"] for b in bins], "o-", color=LIVE, label="live")
    scores.plot(
        when, [b["candidate_mean"] for b in bins], "s-", color=CANDIDATE, label=label(model)
    )
    scores.set_ylabel("mean score")
    scores.set_title(f"Mean score per {_width(width)} bin")
    scores.legend(fontsize="small")
    flips.plot(when, [b["flip_rate"] for b in bins], "o-", color=CANDIDATE, label="flip rate")
    flips.set_ylabel("share of decisions flipped")
    flips.set_title(f"Flips at the live threshold per {_width(width)} bin")
    flips.legend(fontsize="small")
    low, high = when[0] - width, when[-1] + width  # one bin: a point with room around it
    for ax in (scores, flips):
        ax.set_xlim(low, high)
        ax.set_xlabel("event time (UTC)")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        _time_axis(ax, high - low)
    return png(fig)


def _width(width: dt.timedelta) -> str:
    seconds = int(width.total_seconds())
    return (
        f"{seconds // 3600} h"
        if seconds >= 3600
        else (f"{seconds // 60} min" if seconds >= 60 else f"{seconds} s")
    )


def _time_axis(ax: Any, span: dt.timedelta) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(maxticks=6)
    ax.xaxis.set_major_locator(locator)
    form = "%H:%M:%S" if span <= dt.timedelta(hours=2) else "%m-%d %H:%M"
    ax.xaxis.set_major_formatter(mdates.DateFormatter(form))
