"""compose/: every SHADOW__ variable the compose file sets is a setting shadow accepts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shadow.settings import ENV_PREFIX, load_settings

COMPOSE = Path(__file__).parents[2] / "compose" / "docker-compose.yml"


def shadow_variables() -> dict[str, str]:
    spec = yaml.safe_load(COMPOSE.read_text())
    found: dict[str, str] = {}
    for service in spec["services"].values():
        environment = service.get("environment") or {}
        found.update({k: str(v) for k, v in environment.items() if k.startswith(ENV_PREFIX)})
    return found


def test_compose_sets_shadow_variables_for_the_workers() -> None:
    names = shadow_variables()
    assert "SHADOW__KAFKA__BOOTSTRAP_SERVERS" in names
    assert "SHADOW__STORE__URI" in names


def test_every_compose_variable_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    variables = shadow_variables()
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.kafka.bootstrap_servers == variables["SHADOW__KAFKA__BOOTSTRAP_SERVERS"]
    assert settings.store.endpoint_url == variables["SHADOW__STORE__ENDPOINT_URL"]
    assert settings.store.secret_access_key is not None
    assert settings.worker.http_port == int(variables["SHADOW__WORKER__HTTP_PORT"])


def spec() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_every_image_is_pinned_and_ours_is_the_package_version() -> None:
    import tomllib

    version = tomllib.loads((COMPOSE.parents[1] / "pyproject.toml").read_text())["project"][
        "version"
    ]
    for name, service in spec()["services"].items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest", f"{name}: {image} is not pinned"
        if "build" in service:
            assert image == f"shadow:{version}", name
    dockerfile = (COMPOSE.parent / "Dockerfile").read_text()
    base = next(line.split()[1] for line in dockerfile.splitlines() if line.startswith("FROM "))
    assert base.count(".") >= 2, f"the Dockerfile's base {base} is not pinned to a patch release"


def test_long_running_services_restart_and_one_shots_do_not() -> None:
    services = spec()["services"]
    one_shots = {"minio-bucket", "shadow-topics", "shadow-demo-seed", "shadow-gate"}
    for name, service in services.items():
        if name in one_shots:
            assert service["restart"] in ("no", "on-failure:5"), name
        else:
            assert service["restart"] == "unless-stopped", name


def test_the_non_root_image_has_a_writable_model_cache() -> None:
    dockerfile = (COMPOSE.parent / "Dockerfile").read_text()
    assert "USER shadow" in dockerfile and "--create-home --home-dir /home/shadow" in dockerfile
    assert "chown -R shadow:shadow /var/cache/shadow" in dockerfile
    assert "COPY bench" not in dockerfile
    for name, service in spec()["services"].items():
        if "build" not in service:
            continue
        cache = service["environment"]["SHADOW__REGISTRY__MODEL_CACHE"]
        mounts = [volume.split(":")[1] for volume in service["volumes"]]
        assert any(cache.startswith(mount) for mount in mounts), name


def test_the_one_shot_services_run_commands_the_cli_has() -> None:
    import subprocess
    import sys

    services = spec()["services"]
    seed = services["shadow-demo-seed"]
    assert seed["depends_on"]["shadow-worker"]["condition"] == "service_healthy"
    gate = services["shadow-gate"]
    assert gate["depends_on"]["shadow-demo-seed"]["condition"] == "service_completed_successfully"
    script = gate["command"][-1]
    assert "shadow compare --window 24h" in script and "shadow gate --evidence" in script
    commands = [seed["command"][1:2], services["shadow-topics"]["command"][1:3], ["compare"]]
    for words in [*commands, ["gate"], ["worker"], ["monitor"]]:
        done = subprocess.run(
            [sys.executable, "-m", "shadow", *words, "--help"], capture_output=True, check=False
        )
        assert done.returncode == 0, words


def test_prometheus_loads_the_rules_and_grafana_the_dashboard() -> None:
    services = spec()["services"]
    prometheus = yaml.safe_load((COMPOSE.parent / "prometheus" / "prometheus.yml").read_text())
    mounted = {v.split(":")[1]: v.split(":")[0] for v in services["prometheus"]["volumes"]}
    for rule_file in prometheus["rule_files"]:
        assert mounted[rule_file] == "./prometheus/alerts.yml"
    worker_job = next(j for j in prometheus["scrape_configs"] if j["job_name"] == "shadow-worker")
    port = worker_job["dns_sd_configs"][0]["port"]
    assert str(port) == shadow_variables()["SHADOW__WORKER__HTTP_PORT"]
    provisioning = COMPOSE.parent / "grafana" / "provisioning"
    provider = yaml.safe_load((provisioning / "dashboards" / "shadow.yml").read_text())
    grafana = {v.split(":")[1]: v.split(":")[0] for v in services["grafana"]["volumes"]}
    assert grafana[provider["providers"][0]["options"]["path"]] == "./grafana/dashboards"
    source = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    assert source["datasources"][0]["uid"] == "prometheus"  # the uid every panel names
