"""docker-compose.yml against the Compose Specification's JSON schema, and `compose config` (the
docker CLI's plugin, else Debian's docker-compose): interpolation, merges, references."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy import tools

COMPOSE = tools.REPO / "docker-compose.yml"


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def validator() -> jsonschema.Draft201909Validator:
    schema = json.loads(tools.compose_schema().read_text())
    assert schema["title"] == "Compose Specification"
    return jsonschema.Draft201909Validator(schema)


def test_the_compose_file_follows_the_compose_specification() -> None:
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator().iter_errors(compose())]
    assert errors == []


@pytest.mark.parametrize(
    ("service", "key", "bad"),
    [("portal", "restart", 5), ("portal", "healthcheck", {"test": "x", "intervall": "5s"}), ("reaper", "comand", ["x"]),
     ("portal", "ports", "8000:8000")],
)
def test_the_schema_check_catches_a_bad_file(service: str, key: str, bad: Any) -> None:
    broken = copy.deepcopy(compose())
    broken["services"][service][key] = bad
    assert list(validator().iter_errors(broken))


def _config(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SECRET_KEY", "KUBECONFIG", "EPHEMERA_", "LOG_"))}
    return subprocess.run([*tools.docker_compose(), "-f", str(COMPOSE), "config"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env={**base, "KUBECONFIG_FILE": str(kubeconfig), **env})


def test_compose_config_accepts_the_file(tmp_path: Path) -> None:
    result = _config(tmp_path, SECRET_KEY="k" * 40, EPHEMERA_METRICS_TOKEN="t" * 20)
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    portal = resolved["services"]["portal"]
    assert portal["environment"]["SECRET_KEY"] == "k" * 40
    assert portal["environment"]["LOG_FORMAT"] == "json"
    assert portal["environment"]["EPHEMERA_METRICS_TOKEN"] == "t" * 20
    assert "/readyz" in " ".join(portal["healthcheck"]["test"])
    assert resolved["services"]["reaper"]["command"] == ["python", "manage.py", "run_worker"]


def test_compose_config_refuses_to_run_without_the_secret_key(tmp_path: Path) -> None:
    result = _config(tmp_path)
    assert result.returncode != 0 and "set SECRET_KEY" in result.stderr


def test_the_image_logs_json_by_default() -> None:
    env_lines = [line for line in (tools.REPO / "Dockerfile").read_text().splitlines() if line.startswith("ENV ")]
    assert any("LOG_FORMAT=json" in line.split() for line in env_lines), env_lines


def test_the_image_is_described_checked_and_unprivileged() -> None:
    text = (tools.REPO / "Dockerfile").read_text()
    stages = text.split("\nFROM ")
    final = stages[-1]
    assert final.startswith("${PYTHON_IMAGE}") and "ARG PYTHON_IMAGE=" in stages[0] and "ARG NODE_IMAGE=" in stages[0]
    assert "USER 10001" in final and "HEALTHCHECK" in final and "/healthz" in final
    for label in ("title", "version", "source"):
        assert f"org.opencontainers.image.{label}=" in final
    assert "npm" not in final and "node build.mjs" not in final  # no build tools in the final stage
