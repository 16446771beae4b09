"""make run, docker-compose and Helm start `run_worker` (the reaper and notification delivery)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def test_docker_compose_runs_the_worker() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    commands = [s.get("command") for s in compose["services"].values()]
    assert ["python", "manage.py", "run_worker"] in commands
    assert not any(c and "run_reaper" in c for c in commands)


def test_the_helm_chart_runs_the_worker() -> None:
    template = (REPO / "helm" / "ephemera" / "templates" / "deployment.yaml").read_text()
    assert re.search(r"command: \[python, manage\.py, run_worker\]", template)
    assert "run_reaper" not in template


def test_make_run_starts_the_worker() -> None:
    demo = (REPO / "portal" / "demo.py").read_text()
    assert '[*manage, "run_worker"]' in demo and '"run_reaper"' not in demo
