"""Two portals and one worker on one database and one Redis: the way production runs.

Real processes: kubesim (spawn_cluster), `manage.py migrate` and `seed_demo`, two Daphnes (A and
B) and `manage.py run_worker`, all on the same database and the same Redis channel layer.

- Database: with DATABASE_URL pointing at PostgreSQL (CI's second pass), a scratch database of
  this run's own on that server; otherwise a SQLite file (both Daphnes and the worker share it).
- Redis: REDIS_URL's server when set; otherwise a redis-server of our own on a free port (this
  machine kind has Debian's redis-server). Either way under a channel prefix of this run's own.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from kubesim.testing import spawn_cluster

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen[bytes], what: str, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise RuntimeError(f"{what} did not answer at {url} within {timeout}s")


@contextmanager
def _redis(tmp: Path) -> Iterator[str]:
    url = os.environ.get("REDIS_URL", "")
    if url:
        yield url
        return
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("the scale-out tests need Redis: set REDIS_URL or install Debian's redis-server")
    port = free_port()
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def _database(tmp: Path) -> Iterator[str]:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        yield f"sqlite:///{tmp / 'scale.sqlite3'}"
        return
    import psycopg

    name = f"ephemera_scale_{uuid.uuid4().hex[:10]}"
    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


@dataclass
class Deployment:
    env: dict[str, str]
    urls: dict[str, str] = field(default_factory=dict)  # "a", "b" -> http://127.0.0.1:port
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    logs: Path = REPO / "var" / "test"

    def start_portal(self, name: str) -> str:
        port = self.ports.setdefault(name, free_port())
        log = open(self.logs / f"scale-daphne-{name}.log", "ab")  # noqa: SIM115  (closed with the process)
        proc = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "portal.asgi:application"],
                                cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        _wait_http(f"{url}/healthz", proc, f"portal {name}")
        self.urls[name], self.procs[name] = url, proc
        return url

    def kill(self, name: str) -> None:
        """SIGKILL: no goodbye, no flush, like a crashed pod."""
        proc = self.procs.pop(name)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def manage(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=self.env, check=True,
                              capture_output=True, text=True, timeout=120)
        return done.stdout.strip()

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        self.procs.clear()


@pytest.fixture(scope="package")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    tmp = Path(tmp_path_factory.mktemp("scale"))
    with spawn_cluster(tmp / "kubesim") as cluster, _redis(tmp) as redis_url, _database(tmp) as db_url:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "EPHEMERA_DEMO": "1",
            "EPHEMERA_VAR_DIR": str(tmp / "var"),
            "DATABASE_URL": db_url,
            "REDIS_URL": redis_url,
            "EPHEMERA_CHANNEL_PREFIX": f"scale-{uuid.uuid4().hex[:8]}",
            "KUBECONFIG": str(cluster.kubeconfig),
            "EPHEMERA_PROVISION_TIMEOUT_SECONDS": "30",
            "EPHEMERA_REAPER_INTERVAL_SECONDS": "1",
        }
        deployment = Deployment(env=env)
        deployment.logs.mkdir(parents=True, exist_ok=True)
        deployment.manage("migrate", "--noinput")
        deployment.manage("seed_demo")
        try:
            deployment.start_portal("a")
            deployment.start_portal("b")
            log = open(deployment.logs / "scale-worker.log", "ab")  # noqa: SIM115
            deployment.procs["worker"] = subprocess.Popen([sys.executable, "manage.py", "run_worker"], cwd=REPO, env=env,
                                                          stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            yield deployment
        finally:
            deployment.stop()


# Module scope: Playwright's sync API keeps an asyncio loop running in this thread while it is
# open, and the asyncio tests of the other module would fail under it.
@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    """Debian's Chromium, launched as tests/browser launches it."""
    from tests.browser.conftest import launched_chromium

    with launched_chromium() as browser:
        yield browser
