"""The real portal for browser tests: kubesim + Daphne serving portal.asgi, driven by Chromium.

Everything is a real process: kubesim (spawn_cluster) over HTTPS, `manage.py migrate` and
`seed_demo` on a temporary SQLite file, Daphne on a free port, and Debian's Chromium
(never a downloaded browser).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from kubesim.testing import spawn_cluster

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _build_frontend() -> None:
    """Bundle the frontend when the build is missing or older than any source file."""
    src = REPO / "frontend" / "src"
    built = REPO / "frontend" / "build" / "ephemera" / "app.js"
    newest = max(p.stat().st_mtime for p in src.rglob("*") if p.is_file())
    if not built.exists() or built.stat().st_mtime < newest:
        subprocess.run(["node", "build.mjs"], cwd=REPO / "frontend", check=True, capture_output=True, timeout=120)


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"daphne exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise RuntimeError(f"the portal did not answer at {url} within {timeout}s")


@pytest.fixture(scope="session")
def portal_env() -> dict[str, str]:
    """The environment the portal runs with (filled by portal_url): for a test that runs one of
    its management commands, e.g. a reaper pass (`make run` runs the reaper next to Daphne), or
    kubectl against its kubesim (KUBECONFIG)."""
    return {}


@contextmanager
def _running_portal(tmp: Path, portal_env: dict[str, str], extra_env: dict[str, str] | None = None,
                    port: int | None = None) -> Iterator[str]:
    """kubesim, a migrated and seeded database and Daphne, all under `tmp`; yields the portal's URL.
    `port`: where Daphne listens (default: a free one), for a test that must know it beforehand."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `apt-get install -y chromium` (never `playwright install`)")
    _build_frontend()
    with spawn_cluster(tmp / "kubesim") as cluster:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "EPHEMERA_DEMO": "1",
            "EPHEMERA_VAR_DIR": str(tmp / "var"),
            "DATABASE_URL": f"sqlite:///{tmp / 'portal.sqlite3'}",
            "KUBECONFIG": str(cluster.kubeconfig),
            "EPHEMERA_PROVISION_TIMEOUT_SECONDS": "30",
            **(extra_env or {}),
        }
        env.pop("REDIS_URL", None)  # one Daphne process: the in-memory channel layer is enough
        portal_env.update(env)
        for command in (["migrate", "--noinput"], ["seed_demo"]):
            subprocess.run(
                [sys.executable, "manage.py", *command], cwd=REPO, env=env, check=True, capture_output=True, timeout=120
            )
        port = port or _free_port()
        # The server log goes to var/test/ (ignored by git) so it survives pytest's temp rotation.
        log_path = REPO / "var" / "test" / f"browser-daphne{'-' + tmp.name if extra_env else ''}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "wb")  # noqa: SIM115  (closed below, after the process)
        daphne = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "portal.asgi:application"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_http(f"{url}/login/", daphne)
            yield url
        finally:
            if daphne.poll() is None:
                os.killpg(daphne.pid, signal.SIGTERM)
                try:
                    daphne.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(daphne.pid, signal.SIGKILL)
                    daphne.wait(5)
            log.close()


@pytest.fixture(scope="session")
def portal_url(tmp_path_factory: pytest.TempPathFactory, portal_env: dict[str, str]) -> Iterator[str]:
    """The portal with the built-in policy (one approval from `approvers`, busybox, 120 minutes)."""
    with _running_portal(tmp_path_factory.mktemp("portal"), portal_env) as url:
        yield url


# A policy with the rules the policy-aware pages need (tests/browser/policy.yaml): a portal of
# its own, so the tests of portal_url keep the built-in policy they expect.
POLICY_FILE = Path(__file__).with_name("policy.yaml")


@pytest.fixture(scope="session")
def policy_portal_env() -> dict[str, str]:
    """The environment of the policy_portal_url portal (KUBECONFIG of its own kubesim)."""
    return {}


@pytest.fixture(scope="session")
def policy_portal_url(tmp_path_factory: pytest.TempPathFactory, policy_portal_env: dict[str, str]) -> Iterator[str]:
    """A second portal, with its own kubesim and database, running tests/browser/policy.yaml."""
    with _running_portal(
        tmp_path_factory.mktemp("policy-portal"), policy_portal_env, {"EPHEMERA_POLICY_FILE": str(POLICY_FILE)}
    ) as url:
        yield url


@contextmanager
def launched_chromium() -> Iterator[object]:
    """Debian's Chromium under Playwright, headless (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


# Package scope, not session: Playwright's sync API runs an asyncio loop in this thread for
# as long as it is open, and every later test that calls asyncio.run() would then fail.
@pytest.fixture(scope="package")
def browser() -> Iterator[object]:
    with launched_chromium() as chromium:
        yield chromium
