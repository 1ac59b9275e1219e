"""Policy - the YAML rules a candidate must meet to pass the gate, and the verdict they give."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from analysis.evidence import metric_names
from shadow.errors import UsageError

DEFAULT_POLICY = "default.yaml"


@dataclass(frozen=True)
class Rule:
    """metric >= min and/or metric <= max; a rule on an unmeasured metric fails unless optional."""

    metric: str
    min: float | None = None
    max: float | None = None
    optional: bool = False
    why: str = ""

    def check(self, value: float | None) -> str:
        """pass, fail or skip (optional rule, metric not measured: e.g. no labels yet)."""
        if value is None:
            return "skip" if self.optional else "fail"
        if self.min is not None and value < self.min:
            return "fail"
        if self.max is not None and value > self.max:
            return "fail"
        return "pass"

    @property
    def threshold(self) -> str:
        parts = []
        if self.min is not None:
            parts.append(f">= {self.min:g}")
        if self.max is not None:
            parts.append(f"<= {self.max:g}")
        return " and ".join(parts)


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
    def passed(self) -> bool:
        return all(r.status != "fail" for r in self.results)

    @property
    def summary(self) -> str:
        failed = [r.rule.metric for r in self.results if r.status == "fail"]
        passed = sum(r.status == "pass" for r in self.results)
        verdict = "passed" if self.passed else "failed (" + ", ".join(failed) + ")"
        return f"gate {self.policy}: {verdict}; {passed}/{len(self.results)} rules passed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "evidence_id": self.evidence_id,
            "policy": self.policy,
            "passed": self.passed,
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
    """Read and validate a policy; UsageError (exit 2) for a missing file or an unknown metric."""
    import yaml

    path = path or default_policy_path()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"policy file {path} does not exist") from None
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"policy file {path} is not readable YAML ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list) or not data["rules"]:
        raise UsageError(f"policy {path}: expected a mapping with a non-empty 'rules' list")
    rules = tuple(_rule(path, i, raw) for i, raw in enumerate(data["rules"], start=1))
    return Policy(name=str(data.get("name", path.stem)), rules=rules, source=str(path))


def _rule(path: Path, number: int, raw: Any) -> Rule:
    where = f"policy {path} rule {number}"
    if not isinstance(raw, dict) or "metric" not in raw:
        raise UsageError(f"{where}: each rule needs a 'metric'")
    unknown_keys = set(raw) - {"metric", "min", "max", "optional", "why"}
    if unknown_keys:
        raise UsageError(f"{where}: unknown key(s) {', '.join(sorted(unknown_keys))}")
    metric = str(raw["metric"])
    if metric not in metric_names():
        raise UsageError(f"{where}: unknown metric {metric!r} (see `shadow gate --list-metrics`)")
    if raw.get("min") is None and raw.get("max") is None:
        raise UsageError(f"{where}: {metric} needs a min or a max")
    try:
        low = None if raw.get("min") is None else float(raw["min"])
        high = None if raw.get("max") is None else float(raw["max"])
    except (TypeError, ValueError):
        raise UsageError(f"{where}: min/max of {metric} must be numbers") from None
    return Rule(metric, low, high, bool(raw.get("optional", False)), str(raw.get("why", "")))
