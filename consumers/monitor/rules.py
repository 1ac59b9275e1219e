"""Monitor rules - which candidates breach an early-warning rule, from closed windows (pure)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from consumers.monitor.windows import WindowStats, figures
from shadow.settings import MonitorRule


@dataclass(frozen=True)
class JudgedWindow:
    """A candidate's closed window and its figures."""

    model_id: str
    start_ms: int
    end_ms: int
    figures: dict[str, float | None]

    def as_dict(self) -> dict[str, Any]:
        return {"start_ms": self.start_ms, "end_ms": self.end_ms, **self.figures}


@dataclass(frozen=True)
class Breach:
    """A rule a candidate broke, with the windows that broke it (the evidence)."""

    model_id: str
    rule: MonitorRule
    windows: list[JudgedWindow] = field(default_factory=list)

    @property
    def reason(self) -> str:
        rule = self.rule
        seen = ", ".join(_fmt(w.figures[rule.metric]) for w in self.windows)
        return (
            f"{rule.metric} {rule.op} {rule.threshold:g} in {rule.windows} window(s) in a row "
            f"({seen})"
        )

    def evidence(self) -> str:
        """JSON of the rule and the window figures, for the registry's transition event."""
        return json.dumps(
            {
                "source": "shadow-monitor",
                "model_id": self.model_id,
                "rule": self.rule.model_dump(),
                "windows": [w.as_dict() for w in self.windows],
            },
            sort_keys=True,
        )


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def closed_windows(
    tallies: Mapping[tuple[str, int], WindowStats], now_ms: int, window_ms: int, grace_ms: int
) -> dict[str, list[JudgedWindow]]:
    """Windows whose end plus the grace period has passed, per candidate, oldest first."""
    history: dict[str, list[JudgedWindow]] = {}
    for (model_id, start), stats in sorted(tallies.items(), key=lambda item: item[0][1]):
        end = start + window_ms
        if end + grace_ms <= now_ms:
            history.setdefault(model_id, []).append(
                JudgedWindow(model_id, start, end, figures(stats))
            )
    return history


def crosses(rule: MonitorRule, value: float | None) -> bool:
    if value is None:
        return False
    return value > rule.threshold if rule.op == ">" else value < rule.threshold


def breaches(
    history: Mapping[str, Sequence[JudgedWindow]],
    rules: Sequence[MonitorRule],
    min_count: int,
) -> list[Breach]:
    """Per candidate, the first rule whose last ``rule.windows`` judged windows all cross it.

    Windows with fewer than min_count records are not judged (shown, never counted).
    """
    found = []
    for model_id, windows in sorted(history.items()):
        judged = [w for w in windows if (w.figures["count"] or 0) >= min_count]
        for rule in rules:
            last = judged[-rule.windows :]
            if len(last) == rule.windows and all(
                crosses(rule, w.figures[rule.metric]) for w in last
            ):
                found.append(Breach(model_id, rule, list(last)))
                break
    return found
