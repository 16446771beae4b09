"""The plugin against a real portal: kubesim (spawn_cluster), Daphne serving portal.asgi on a
temporary SQLite file with the demo policy (tests/e2e/test_sigkill.py's Portal), and
`.venv/bin/kubectl-ephemera` run as a separate process, each persona with its own config dir.

One portal for the whole directory: starting kubesim, migrating and seeding takes most of the
time, and every test makes requests of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pexpect
import pytest

from kubesim.testing import spawn_cluster
from tests.e2e.test_sigkill import REPO, Portal

PLUGIN = Path(sys.executable).parent / "kubectl-ephemera"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
TARGET = "distroless-nginx-ctr"


def plugin_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a user's shell: their own HOME and config dir, nothing of ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EPHEMERA_", "DJANGO_", "KUBECONFIG"))}
    env.update({"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "LANG": "C.UTF-8", "TERM": "xterm", **extra})
    return env


@dataclass
class User:
    """A persona at their own terminal: the plugin with their config dir, and their API token."""

    name: str
    token: str
    home: Path
    portal: Portal

    @property
    def env(self) -> dict[str, str]:
        return plugin_env(self.home)

    def run(self, *args: str, input: str | None = None, timeout: float = 60, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(PLUGIN), *args], env=env or self.env, input=input, capture_output=True, text=True,
                              timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)

    def json(self, *args: str) -> Any:
        result = self.run(*args, "-o", "json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def spawn(self, *args: str, rows: int = 24, cols: int = 80) -> pexpect.spawn:
        child = pexpect.spawn(str(PLUGIN), list(args), env=self.env, encoding="utf-8", codec_errors="strict",
                              dimensions=(rows, cols), timeout=60)
        return child

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        return self.portal.api(self.token, method, path, body)


@dataclass
class Stack:
    portal: Portal
    cluster: Any
    nginx: str
    users: dict[str, User]


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    assert PLUGIN.exists(), f"{PLUGIN} is missing: make deps installs ./cli into .venv"
    tmp = tmp_path_factory.mktemp("cli")
    with spawn_cluster(tmp / "kubesim") as cluster:
        portal = Portal(tmp, cluster.kubeconfig)
        portal.env["EPHEMERA_POLICY_FILE"] = str(REPO / "portal" / "demo_policy.yaml")
        portal.manage("migrate", "--noinput")
        portal.manage("seed_demo")
        users = {}
        for name in ("alice", "bob", "carol"):
            home = tmp / f"home-{name}"
            home.mkdir()
            users[name] = User(name, portal.manage("create_api_token", name).strip(), home, portal)
        pods = json.loads(cluster.kubectl("get", "pods", "-n", "default", "-o", "json").stdout)["items"]
        nginx = next(i["metadata"]["name"] for i in pods if i["metadata"]["name"].startswith("distroless-nginx-"))
        portal.start()
        try:
            for user in users.values():
                done = user.run("login", portal.url, "--token", user.token)
                assert done.returncode == 0, done.stderr
            yield Stack(portal, cluster, nginx, users)
        finally:
            portal.stop_all()


@pytest.fixture
def alice(stack: Stack) -> User:
    return stack.users["alice"]


@pytest.fixture
def bob(stack: Stack) -> User:
    return stack.users["bob"]


@pytest.fixture
def carol(stack: Stack) -> User:
    return stack.users["carol"]


def pod_request(stack: Stack, **overrides: Any) -> dict[str, Any]:
    return {"namespace": "default", "pod": stack.nginx, "container": TARGET, "image": "busybox", "profile": "general",
            "reason": "cli test", "duration_minutes": 20, **overrides}


def wait_for(predicate: Any, seconds: float = 30, every: float = 0.3) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out waiting")
