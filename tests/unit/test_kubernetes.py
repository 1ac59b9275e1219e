"""deploy/kubernetes: rendered by `kubectl kustomize` and validated offline against the
Kubernetes schemas (kubernetes-validate); settings by the README's names; parts that must agree."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from shadow.settings import ENV_PREFIX, load_settings

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy" / "kubernetes"
VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
"""The oldest Kubernetes release still commonly run, and the newest the package knows."""


def render(overlay: str) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl (with its built-in kustomize) is needed to render deploy/kubernetes"
    done = subprocess.run(
        [kubectl, "kustomize", str(DEPLOY / overlay)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def pod_specs(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    specs = []
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job"):
            specs.append(doc["spec"]["template"]["spec"])
        elif doc["kind"] == "CronJob":
            specs.append(doc["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    return specs


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("overlay", ["base", "keda"])
def test_every_object_is_valid_against_the_kubernetes_schemas(overlay: str, version: str) -> None:
    docs = render(overlay)
    checked = 0
    for doc in docs:
        if doc["apiVersion"].startswith("keda.sh/"):
            continue  # a CRD: its schema ships with KEDA, checked for consistency below
        kubernetes_validate.validate(doc, version, strict=True)
        checked += 1
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "PodDisruptionBudget", "ConfigMap", "Secret", "CronJob", "Job"} <= kinds
    assert checked >= 10


def test_the_validator_refuses_a_broken_object() -> None:
    worker = copy.deepcopy(find(render("base"), "Deployment", "shadow-worker"))
    worker["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["pth"] = "/"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(worker, VERSIONS[0], strict=True)


def shadow_variables(docs: list[dict[str, Any]]) -> dict[str, str]:
    found = dict(find(docs, "ConfigMap", "shadow-config")["data"])
    found |= find(docs, "Secret", "shadow-secrets")["stringData"]
    for spec in pod_specs(docs):
        for container in spec["containers"]:
            for env in container.get("env", []):
                found[env["name"]] = env.get("value", "from-the-pod")
    return {name: value for name, value in found.items() if name.startswith(ENV_PREFIX)}


def test_settings_are_the_readme_names_and_shadow_accepts_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    variables = shadow_variables(render("base"))
    readme = (ROOT / "README.md").read_text()
    table = readme.split("<!-- settings-reference:start -->")[1].split("<!-- settings-reference")[0]
    documented = set(re.findall(r"`(SHADOW__[A-Z_]+)`", table))
    assert set(variables) <= documented, set(variables) - documented
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.worker.http_port == 9400
    assert str(settings.registry.model_cache).startswith("/var/cache/shadow")


def test_probes_ports_and_budget_agree() -> None:
    docs = render("base")
    config = find(docs, "ConfigMap", "shadow-config")["data"]
    worker = find(docs, "Deployment", "shadow-worker")
    container = worker["spec"]["template"]["spec"]["containers"][0]
    assert container["ports"][0]["containerPort"] == int(config["SHADOW__WORKER__HTTP_PORT"])
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["command"] == ["shadow", "worker"]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert any(config["SHADOW__REGISTRY__MODEL_CACHE"].startswith(m) for m in mounts)
    budget = find(docs, "PodDisruptionBudget", "shadow-worker")
    labels = worker["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_keda_scales_the_workers_group_within_the_partitions() -> None:
    docs = render("keda")
    config = find(docs, "ConfigMap", "shadow-config")["data"]
    scaled = find(docs, "ScaledObject", "shadow-worker")
    trigger = scaled["spec"]["triggers"][0]["metadata"]
    assert trigger["consumerGroup"] == config["SHADOW__WORKER__GROUP_ID"]
    assert trigger["topic"] == config["SHADOW__KAFKA__TOPIC"]
    assert trigger["bootstrapServers"] == config["SHADOW__KAFKA__BOOTSTRAP_SERVERS"]
    command = find(docs, "Job", "shadow-topics")["spec"]["template"]["spec"]["containers"][0]
    partitions = int(command["command"][command["command"].index("--partitions") + 1])
    assert scaled["spec"]["maxReplicaCount"] <= partitions
    assert scaled["spec"]["scaleTargetRef"]["name"] == "shadow-worker"
