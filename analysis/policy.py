"""Policy - the YAML rules a candidate must meet to pass the gate, and the verdict they give.

A rule ends PASS, FAIL, SKIP or INSUFFICIENT (evidence). Missing or thin evidence never passes
a rule that must hold: a required rule whose metric was not measured, a labelled rule with
fewer labelled frauds than its `min_positives`, or an evidence-volume rule (`transactions`,
`labelled_positives`...) below its minimum is INSUFFICIENT, which blocks promotion like FAIL.
Only an `optional` rule may wait: it is SKIPPED while its metric is not measured (no labels in
the window yet, no single-request probes), and then does not block.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from analysis.evidence import LABEL_COUNTS, RENAMED, labelled_metric, metric_names
from shadow.errors import UsageError

DEFAULT_POLICY = "default.yaml"
PASS, FAIL, SKIP, INSUFFICIENT = "pass", "fail", "skip", "insufficient"
EVIDENCE_METRICS = {"transactions", "sampled", *LABEL_COUNTS}
"""Metrics that count evidence: below their minimum the verdict is insufficient evidence."""
_KEYS = {"metric", "min", "max", "optional", "why", "min_positives"}


@dataclass(frozen=True)
class Rule:
    """metric >= min and/or metric <= max, judged only on enough evidence."""

    metric: str
    min: float | None = None
    max: float | None = None
    optional: bool = False
    why: str = ""
    min_positives: int = 0
    """Labelled rules: labelled frauds (positives) needed before the rule can pass."""

    def check(self, value: float | None, positives: float | None = None) -> str:
        """PASS, FAIL, SKIP or INSUFFICIENT for the measured value; `positives`: the labelled
        frauds behind the candidate's labelled figures (None: the window has no labels)."""
        if labelled_metric(self.metric):
            if positives is None:
                return SKIP if self.optional else INSUFFICIENT
            if positives < self.min_positives:
                return INSUFFICIENT
        if value is None:
            return SKIP if self.optional and not labelled_metric(self.metric) else INSUFFICIENT
        if (self.min is not None and value < self.min) or (
            self.max is not None and value > self.max
        ):
            return INSUFFICIENT if self.metric in EVIDENCE_METRICS else FAIL
        return PASS

    @property
    def threshold(self) -> str:
        parts = []
        if self.min is not None:
            parts.append(f">= {self.min:g}")
        if self.max is not None:
            parts.append(f"<= {self.max:g}")
        text = " and ".join(parts)
        if self.min_positives and labelled_metric(self.metric):
            text += f", {self.min_positives}+ frauds"
        return text


@dataclass(frozen=True)
class Policy:
    name: str
    rules: tuple[Rule, ...]
    source: str = ""


@dataclass(frozen=True)
class RuleResult:
    rule: Rule
    value: float | None
    status: str


@dataclass(frozen=True)
class GateVerdict:
    """The gate's answer for one candidate: every rule's value and status."""

    candidate: str
    evidence_id: str
    policy: str
    results: tuple[RuleResult, ...] = field(default_factory=tuple)

    @property
    def status(self) -> str:
        """pass; fail (a rule failed); insufficient (no rule failed, but the evidence was too
        thin or missing for a rule that must hold)."""
        found = {r.status for r in self.results}
        if FAIL in found:
            return FAIL
        return INSUFFICIENT if INSUFFICIENT in found else PASS

    @property
    def passed(self) -> bool:
        return self.status == PASS

    @property
    def blocking(self) -> list[RuleResult]:
        """The rules that keep the candidate from passing."""
        return [r for r in self.results if r.status in (FAIL, INSUFFICIENT)]

    @property
    def summary(self) -> str:
        passed = sum(r.status == PASS for r in self.results)
        words = {PASS: "passed", FAIL: "failed", INSUFFICIENT: "insufficient evidence"}
        verdict = words[self.status]
        if self.blocking:
            verdict += " (" + ", ".join(r.rule.metric for r in self.blocking) + ")"
        return f"gate {self.policy}: {verdict}; {passed}/{len(self.results)} rules passed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "evidence_id": self.evidence_id,
            "policy": self.policy,
            "passed": self.passed,
            "status": self.status,
            "rules": [
                {
                    "metric": r.rule.metric,
                    "threshold": r.rule.threshold,
                    "value": r.value,
                    "status": r.status,
                    "why": r.rule.why,
                }
                for r in self.results
            ],
        }


def default_policy_path() -> Path:
    """The policy shipped with the package (analysis/policies/default.yaml)."""
    return Path(str(resources.files("analysis") / "policies" / DEFAULT_POLICY))


def load_policy(path: Path | None = None) -> Policy:
    """Read and validate a policy; UsageError (exit 2) for a missing file or an unknown metric.
    A top-level `min_positives` applies to every labelled rule that does not set its own."""
    import yaml

    path = path or default_policy_path()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"policy file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UsageError(f"policy file {path} is not readable YAML ({reason})") from None
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list) or not data["rules"]:
        raise UsageError(f"policy {path}: expected a mapping with a non-empty 'rules' list")
    unknown = set(data) - {"name", "rules", "min_positives"}
    if unknown:
        raise UsageError(f"policy {path}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    least = _count(f"policy {path}", data.get("min_positives", 0))
    rules = tuple(_rule(path, i, raw, least) for i, raw in enumerate(data["rules"], start=1))
    return Policy(name=str(data.get("name", path.stem)), rules=rules, source=str(path))


def _rule(path: Path, number: int, raw: Any, least: int) -> Rule:
    where = f"policy {path} rule {number}"
    if not isinstance(raw, dict) or "metric" not in raw:
        raise UsageError(f"{where}: each rule needs a 'metric'")
    unknown_keys = set(raw) - _KEYS
    if unknown_keys:
        raise UsageError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown_keys)))}")
    metric = str(raw["metric"])
    if metric in RENAMED:
        new, why = RENAMED[metric]
        raise UsageError(f"{where}: metric {metric} is now called {new} ({why})")
    if metric not in metric_names():
        raise UsageError(f"{where}: unknown metric {metric!r} (see `shadow gate --list-metrics`)")
    if raw.get("min") is None and raw.get("max") is None:
        raise UsageError(f"{where}: {metric} needs a min or a max")
    try:
        low = None if raw.get("min") is None else float(raw["min"])
        high = None if raw.get("max") is None else float(raw["max"])
    except (TypeError, ValueError):
        raise UsageError(f"{where}: min/max of {metric} must be numbers") from None
    if any(bound is not None and not math.isfinite(bound) for bound in (low, high)):
        raise UsageError(f"{where}: min/max of {metric} must be finite numbers")
    if not isinstance(raw.get("optional", False), bool):
        raise UsageError(f"{where}: optional must be true or false")
    positives = _count(where, raw.get("min_positives", least))
    return Rule(metric, low, high, raw.get("optional", False), str(raw.get("why", "")), positives)


def _count(where: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UsageError(f"{where}: min_positives must be a whole number >= 0, not {value!r}")
    return value
