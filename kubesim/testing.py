"""Running kubesim from tests: in-process (background thread) or as a `python -m kubesim` subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kubesim import state as state_mod
from kubesim.server import KubeSim

StateArg = state_mod.State | dict[str, Any] | str | Path | None
REPO_ROOT = Path(__file__).resolve().parent.parent
KUBECTL = str(Path(sys.executable).parent / "kubectl")
# A busybox shell whose image runs as nonroot (uid 65532), as distroless' debug-nonroot does: the
# image a `restricted` debug container (runAsNonRoot) can start; busybox runs as root and stays
# in CreateContainerConfigError, as on a cluster.
NONROOT_IMAGE = "gcr.io/distroless/base:debug-nonroot"


def debug_image(profile: str) -> str:
    """The image kubectl debug with this profile can start on kubesim (and on a cluster)."""
    return NONROOT_IMAGE if profile == "restricted" else "busybox"


class FaultsClient:
    """Client for the /_kubesim/ endpoints."""

    def __init__(self, url: str, token: str, ca_file: Path | None) -> None:
        self._url = url
        self._token = token
        self._ssl = ssl.create_default_context(cafile=str(ca_file)) if ca_file else None

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None, timeout: float = 10) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self._url + path, data=data, method=method)  # noqa: S310 - always the cluster\'s own URL
        req.add_header("Authorization", f"Bearer {self._token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=timeout, context=self._ssl) as resp:  # noqa: S310
            raw = resp.read()
        return json.loads(raw) if resp.headers.get_content_type() == "application/json" else raw.decode()

    def add(
        self,
        status: int | None = None,
        *,
        path: str = ".*",
        method: str | None = None,
        message: str | None = None,
        delay: float | None = None,
        times: int | None = None,
    ) -> Any:
        """Matching requests get `status` (after `delay`), or are only delayed when status is None."""
        body = {"method": method, "path": path, "status": status, "message": message, "delay": delay, "times": times}
        return self._call("POST", "/_kubesim/faults", {k: v for k, v in body.items() if v is not None})

    def clear(self) -> None:
        self._call("DELETE", "/_kubesim/faults")

    def cut_streams(self, namespace: str | None = None, pod: str | None = None, container: str | None = None) -> int:
        body = {"namespace": namespace, "pod": pod, "container": container}
        return int(self._call("POST", "/_kubesim/cut-streams", {k: v for k, v in body.items() if v})["cut"])

    def unreachable(self, seconds: float) -> None:
        self._call("POST", "/_kubesim/unreachable", {"seconds": seconds})

    def healthz(self, timeout: float = 2) -> bool:
        try:
            return self._call("GET", "/_kubesim/healthz", timeout=timeout) == "ok"
        except (urllib.error.URLError, OSError):
            return False


@dataclass
class RunningCluster:
    kubeconfig: Path
    url: str
    token: str
    ca_file: Path | None
    faults: FaultsClient
    _stop: Callable[[], None]
    sim: KubeSim | None = None  # in-process clusters only
    process: subprocess.Popen[str] | None = None  # subprocess clusters only
    _stopped: bool = field(default=False)

    def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            self._stop()

    def kubectl(self, *args: str, timeout: float = 30, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run the real kubectl against this cluster."""
        return subprocess.run(
            [KUBECTL, "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
        )

    def api_client(self) -> Any:
        """An official-Python-client ApiClient configured from the kubeconfig."""
        from kubernetes import client, config

        configuration = client.Configuration()
        config.load_kube_config(config_file=str(self.kubeconfig), client_configuration=configuration)
        return client.ApiClient(configuration)


def _load_state(state: StateArg) -> state_mod.State:
    if state is None or isinstance(state, state_mod.State):
        return state or state_mod.default_state()
    if isinstance(state, dict):
        return state_mod.from_dict(state)
    return state_mod.load(state)


@contextlib.contextmanager
def run_cluster(tmp_dir: Path | str, state: StateArg = None, **opts: Any) -> Iterator[RunningCluster]:
    """A cluster served from a background thread with its own event loop.

    opts go to KubeSim (port, audit_log, plain_http, runtime_factory, pull_delay).
    """
    tmp = Path(tmp_dir)
    tmp.mkdir(parents=True, exist_ok=True)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    failure: list[BaseException] = []
    sim = KubeSim(kubeconfig_path=tmp / "kubeconfig", state=_load_state(state), **opts)
    stop_requested: asyncio.Event | None = None

    async def main() -> None:
        nonlocal stop_requested
        stop_requested = asyncio.Event()
        try:
            await sim.start()
        except BaseException as e:
            failure.append(e)
            started.set()
            return
        started.set()
        await stop_requested.wait()
        await sim.stop()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), name="kubesim", daemon=True)
    thread.start()
    if not started.wait(30):
        raise RuntimeError("kubesim did not start within 30s")
    if failure:
        thread.join(5)
        raise failure[0]

    def stop() -> None:
        assert stop_requested is not None
        loop.call_soon_threadsafe(stop_requested.set)
        thread.join(30)
        loop.close()

    ca_file = None if sim.plain_http else sim.ca_file
    handle = RunningCluster(
        sim.kubeconfig_path, sim.url, sim.token, ca_file, FaultsClient(sim.url, sim.token, ca_file), stop, sim=sim
    )
    try:
        yield handle
    finally:
        handle.stop()


@contextlib.contextmanager
def spawn_cluster(
    tmp_dir: Path | str, state: StateArg = None, *, extra_args: list[str] | None = None, startup_timeout: float = 30, **opts: Any
) -> Iterator[RunningCluster]:
    """`python -m kubesim serve` in a subprocess (own process group), same handle as run_cluster."""
    tmp = Path(tmp_dir)
    tmp.mkdir(parents=True, exist_ok=True)
    kubeconfig_path = tmp / "kubeconfig"
    args = [sys.executable, "-m", "kubesim", "serve", "--kubeconfig", str(kubeconfig_path)]
    if state is not None:
        if isinstance(state, state_mod.State):
            raise TypeError("spawn_cluster needs the state as a dict or a file")
        if isinstance(state, dict):
            state_file = tmp / "state.yaml"
            state_file.write_text(yaml.safe_dump(state))
            state = state_file
        args += ["--state", str(state)]
    for key, value in opts.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            args.append(flag)
        elif value not in (None, False):
            args += [flag, str(value)]
    args += extra_args or []
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    ready = _wait_ready(proc, startup_timeout)
    url = ready.split(" on ", 1)[1].split()[0]
    config = yaml.safe_load(kubeconfig_path.read_text())
    token = config["users"][0]["user"]["token"]
    ca_file = None if url.startswith("http://") else kubeconfig_path.with_name(kubeconfig_path.name + ".ca.crt")

    def stop() -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()

    handle = RunningCluster(kubeconfig_path, url, token, ca_file, FaultsClient(url, token, ca_file), stop, process=proc)
    try:
        yield handle
    finally:
        handle.stop()


def _wait_ready(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    result: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("kubesim ready on "):
                result.append(line.strip())
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    if not result:
        proc.kill()
        _, err = proc.communicate(timeout=5)
        raise RuntimeError(f"kubesim did not become ready (exit {proc.returncode}): {err}")
    return result[0]
