"""One container: its status as the kubelet would report it, and its main process's life cycle."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .cgroups import Cgroup, CgroupRoot
from .ids import go_duration, new_container_id, now_rfc3339
from .images import Image, ImageKind, pull_error_message, resolve, run_as_non_root_error
from .isolation import Sandbox, SandboxError, Started
from .logbuffer import LogBuffer
from .process import Process

log = logging.getLogger(__name__)

ContainerKey = tuple[str, str, str]
StatusCallback = Callable[[ContainerKey, str, dict[str, Any]], None]
PidLookup = Callable[[str], "int | None"]  # a container of the same pod -> its main process's pid

FAKE_NGINX = str(Path(__file__).with_name("fake_nginx.py"))
NONROOT_UID = 65532  # distroless/chainguard "nonroot"
CRASH_SCRIPT = "echo 'starting up'; sleep 1; echo 'fatal: cannot reach the database' >&2; exit 1"
NGINX_BINARIES = ("nginx", "/usr/sbin/nginx")


class ExecError(Exception):
    """The runtime could not start the exec'd process; the text is what containerd would say."""


class Timing:
    """Back-off knobs, so tests can run the kubelet's 10s..5m schedule in milliseconds."""

    def __init__(self, pull_delay: float = 0.0, backoff: float = 10.0, max_backoff: float = 300.0) -> None:
        self.pull_delay = pull_delay
        self.backoff = backoff
        self.max_backoff = max_backoff


def _not_found(argv0: str) -> str:
    # runc's wording: a bare name is looked up in $PATH, a path is stat'ed.
    if "/" in argv0:
        return f'exec: "{argv0}": stat {argv0}: no such file or directory'
    return f'exec: "{argv0}": executable file not found in $PATH'


class Container:
    def __init__(
        self,
        pod: dict[str, Any],
        spec: dict[str, Any],
        kind: str,
        timing: Timing,
        on_status: StatusCallback,
        cgroups: CgroupRoot | None = None,
        sandbox: Sandbox | None = None,
        find_pid: PidLookup | None = None,
    ) -> None:
        meta = pod.get("metadata", {})
        self.pod = pod
        self.namespace: str = meta.get("namespace", "default")
        self.pod_name: str = meta["name"]
        self.pod_uid: str = meta.get("uid", "")
        self.restart_policy: str = pod.get("spec", {}).get("restartPolicy", "Always")
        self.spec = spec
        self.kind = kind
        self.name: str = spec["name"]
        self.key: ContainerKey = (self.namespace, self.pod_name, self.name)
        self.image: Image = resolve(spec.get("image", ""))
        self.tty = bool(spec.get("tty"))
        self.stdin = bool(spec.get("stdin"))
        self.stdin_once = bool(spec.get("stdinOnce"))
        self.timing = timing
        self._on_status = on_status
        self._cgroups = cgroups
        self._sandbox = sandbox
        self._find_pid = find_pid
        self.main_pid: int | None = None  # the container's first process inside its sandbox (host view)
        self.cgroup: Cgroup | None = None  # this run's; a restart gets a new one, as with runc
        self.logs = LogBuffer()
        self.process: Process | None = None
        self.execs: set[Process] = set()
        self.container_id: str | None = None
        self.restart_count = 0
        self.state: dict[str, Any] = {}
        self.last_state: dict[str, Any] = {}
        self._started_at = ""
        self._stop = asyncio.Event()
        self.task: asyncio.Task[int | None] | None = None

    # --- status ----------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        running = "running" in self.state
        completed_init = self.kind == "initContainer" and self.state.get("terminated", {}).get("exitCode") == 0
        status: dict[str, Any] = {
            "name": self.name,
            "image": self.image.normalized,
            "imageID": self.image.image_id if self.container_id else "",
            "ready": (running and self.kind == "container") or completed_init,
            "started": running,
            "restartCount": self.restart_count,
            "state": self.state,
            "lastState": self.last_state,
        }
        if self.container_id:
            status["containerID"] = f"containerd://{self.container_id}"
        return status

    def _emit(self) -> None:
        try:
            self._on_status(self.key, self.kind, self.status())
        except Exception:
            log.exception("on_status callback failed for %s", self.key)

    def set_waiting(self, reason: str, message: str | None = None) -> None:
        self.state = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
        self._emit()

    @property
    def is_running(self) -> bool:
        return self.process is not None and not self.process.exited.is_set() and "running" in self.state

    # --- life cycle ------------------------------------------------------------------------------

    def start(self) -> asyncio.Task[int | None]:
        self.task = asyncio.ensure_future(self.run())
        return self.task

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopped; True if we were stopped."""
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def run(self) -> int | None:
        """Pull, run, restart per policy. Returns the final exit code (None if stopped before running)."""
        if "waiting" not in self.state:
            self.set_waiting("ContainerCreating")
        if self.timing.pull_delay and await self._sleep(self.timing.pull_delay):
            return None
        if self.image.kind is ImageKind.PULL_ERROR:
            await self._pull_forever()
            return None
        if (refusal := run_as_non_root_error(self.pod, self.spec, self.image)) is not None:
            # The kubelet checks before creating the container, on every sync, and reports it
            # as waiting: the container never starts, and the pod keeps the reason.
            self.set_waiting("CreateContainerConfigError", refusal)
            await self._stop.wait()
            return None
        backoff = self.timing.backoff
        while True:
            code = await self._run_once()
            if self._stop.is_set() or not self._should_restart(code):
                return code
            self.last_state = self.state
            self.set_waiting(
                "CrashLoopBackOff",
                f"back-off {go_duration(backoff)} restarting failed container={self.name} "
                f"pod={self.pod_name}_{self.namespace}({self.pod_uid})",
            )
            if await self._sleep(backoff):
                return code
            backoff = min(backoff * 2, self.timing.max_backoff)
            self.restart_count += 1

    def _should_restart(self, code: int) -> bool:
        if self.kind == "ephemeralContainer":
            return False  # ephemeral containers are never restarted
        if self.kind == "initContainer":
            return code != 0 and self.restart_policy != "Never"
        return self.restart_policy == "Always" or (self.restart_policy == "OnFailure" and code != 0)

    async def _pull_forever(self) -> None:
        backoff = self.timing.backoff
        while True:
            self.set_waiting("ErrImagePull", pull_error_message(self.image))
            if await self._sleep(min(1.0, backoff / 10)):
                return
            self.set_waiting("ImagePullBackOff", f'Back-off pulling image "{self.image.reference}"')
            if await self._sleep(backoff):
                return
            backoff = min(backoff * 2, self.timing.max_backoff)

    async def _run_once(self) -> int:
        self.container_id = new_container_id()
        started = now_rfc3339()
        # Named after the container id, as containerd names it (cri-containerd-<id>.scope): from
        # inside a pod that shares its PID namespace, that is how a process is told to be the
        # target's (/proc/<pid>/cgroup).
        cgroup = self._cgroups.new(f"cri-containerd-{self.container_id}.scope") if self._cgroups else None
        try:
            if self._sandbox is not None:
                sandboxed = await self._start_sandboxed(self._sandbox, cgroup)
                proc, self.main_pid = sandboxed.process, sandboxed.pid
                proc.open_output()  # to the log; attachers add their sinks as they come
            else:
                proc = Process(self._main_argv(), tty=self.tty, stdin=self.stdin, env=self.env(), log=self.logs,
                               cgroup_procs=cgroup.procs_file if cgroup else None)
                self.main_pid = proc.pid
        except (OSError, subprocess.SubprocessError, SandboxError) as e:
            if cgroup is not None:
                cgroup.remove()
            reason = _not_found(self._main_argv()[0]) if isinstance(e, FileNotFoundError) else str(e)
            message = (
                "failed to create containerd task: failed to create shim task: OCI runtime create failed: "
                f"runc create failed: unable to start container process: {reason}: unknown"
            )
            self._set_terminated(128, "StartError", started, message)
            return 128
        self.process = proc
        self.cgroup = cgroup
        if self._stop.is_set():  # stopped while it was being set up: stop() could not reach it
            await proc.terminate(0)
        self.state = {"running": {"startedAt": started}}
        self._emit()
        await proc.exited.wait()
        # The main process is gone: so is the container, and everything in it (background jobs,
        # setsid daemons, execs) is killed before the status says terminated, as runc does.
        if cgroup is not None:
            cgroup.kill()
        else:
            proc.signal_group(signal.SIGKILL)
        await proc.finished.wait()
        if cgroup is not None:
            await asyncio.to_thread(cgroup.remove)
        code = proc.exit_code if proc.exit_code is not None else 137
        self._set_terminated(code, "Completed" if code == 0 else "Error", started)
        return code

    async def _start_sandboxed(self, sandbox: Sandbox, cgroup: Cgroup | None) -> Started:
        argv, env = self._main_argv(), self.env()
        builtin = "nginx-serve" if self.image.kind is ImageKind.DISTROLESS_NGINX else None
        if builtin is not None:
            argv = ["/usr/sbin/nginx", "-g", "daemon off;"]
        elif sandbox.resolve(str(sandbox.image_root(self.image)), argv[0], env["PATH"]) is None:
            raise FileNotFoundError(argv[0])
        pause_pid = await sandbox.pod_pid(self.pod)
        target = self.spec.get("targetContainerName") if self.kind == "ephemeralContainer" else None
        target_pid = self._find_pid(target) if target and self._find_pid else None
        pid_mode, pid_target = await sandbox.pid_namespace(self.pod, self.spec, target_pid)
        spec = await asyncio.to_thread(sandbox.container_spec, self.pod, self.spec, self.image, pause_pid, argv, env, builtin)
        return await sandbox.spawn(spec, pid_mode=pid_mode, pid_target=pid_target, tty=self.tty, stdin=self.stdin,
                                   log_buffer=self.logs, cgroup_procs=cgroup.procs_file if cgroup else None)

    def _set_terminated(self, code: int, reason: str, started: str, message: str | None = None) -> None:
        term: dict[str, Any] = {"exitCode": code, "reason": reason, "startedAt": started, "finishedAt": now_rfc3339()}
        if message:
            term["message"] = message
        term["containerID"] = f"containerd://{self.container_id}"
        self.state = {"terminated": term}
        self._emit()

    async def stop(self, grace: float) -> None:
        """Stop for good: no restart, kill the main process and every exec, then let run() finish."""
        self._stop.set()
        procs = [p for p in (self.process, *self.execs) if p is not None]
        await asyncio.gather(*(p.terminate(grace) for p in procs), return_exceptions=True)
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)

    # --- what runs -------------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/root",
            "HOSTNAME": self.pod_name,
        }
        if self.tty:
            env["TERM"] = "xterm-256color"
        for var in self.spec.get("env") or []:
            if "value" in var:  # valueFrom needs the API server; literal values are enough here
                env[var["name"]] = str(var["value"])
        return env

    def _main_argv(self) -> list[str]:
        kind = self.image.kind
        if kind is ImageKind.DISTROLESS_NGINX:
            argv = [sys.executable, FAKE_NGINX, "serve"]
            if os.getuid() == 0:
                argv += ["--uid", str(NONROOT_UID), "--gid", str(NONROOT_UID)]
            return argv
        command = list(self.spec.get("command") or [])
        args = list(self.spec.get("args") or [])
        if kind is ImageKind.CRASHLOOP and not command:
            # The image's entrypoint is what crashes; a command of the pod's own replaces it
            # (how a copy keeps the crashing container up to be looked at).
            return ["/bin/sh", "-c", CRASH_SCRIPT]
        if command or args:
            return command + args if command else args  # busybox has no ENTRYPOINT: args replace CMD
        if self.kind == "container" and not self.stdin:
            # A regular container without stdin would run sh and exit at once: we assume the
            # image's default command is a long-running server instead.
            return ["sleep", "infinity"]
        return ["/bin/sh"]

    async def exec(self, command: list[str], *, tty: bool, stdin: bool) -> Process:
        """Start a process inside the container, or raise ExecError like containerd would."""
        exec_id = new_container_id()
        argv = command
        distroless = self.image.kind is ImageKind.DISTROLESS_NGINX
        if distroless:
            if not command or command[0] not in NGINX_BINARIES:
                raise ExecError(self._exec_failure(exec_id, _not_found(command[0] if command else "")))
            argv = [sys.executable, FAKE_NGINX, "cli", *command[1:]]
        if not self.is_running:
            raise ExecError(f'container {self.name} is not running')
        env = self.env()
        if tty:
            env["TERM"] = "xterm-256color"
        if self._sandbox is not None and self.main_pid is not None:
            return await self._exec_sandboxed(self._sandbox, self.main_pid, exec_id, command, env, tty=tty, stdin=stdin)
        try:
            # An exec joins the container's cgroup (runc exec does): it dies with the container.
            proc = Process(argv, tty=tty, stdin=stdin, env=env, cgroup_procs=self.cgroup.procs_file if self.cgroup else None)
        except subprocess.SubprocessError:  # the cgroup went away between the check and the fork
            raise ExecError(self._exec_failure(exec_id, "container is not running")) from None
        except FileNotFoundError:
            raise ExecError(self._exec_failure(exec_id, _not_found(command[0]))) from None
        except PermissionError:
            raise ExecError(self._exec_failure(exec_id, f'exec: "{command[0]}": permission denied')) from None
        self.execs.add(proc)  # the exec handler discards it when it is over
        return proc

    async def _exec_sandboxed(self, sandbox: Sandbox, main_pid: int, exec_id: str, command: list[str],
                              env: dict[str, str], *, tty: bool, stdin: bool) -> Process:
        builtin = "nginx-cli" if self.image.kind is ImageKind.DISTROLESS_NGINX else None
        if not command:
            raise ExecError(self._exec_failure(exec_id, _not_found("")))
        if builtin is None and sandbox.resolve(f"/proc/{main_pid}/root", command[0], env["PATH"]) is None:
            raise ExecError(self._exec_failure(exec_id, _not_found(command[0])))
        spec = sandbox.exec_spec(self.pod, self.spec, self.image, main_pid, command, env, builtin)
        try:
            started = await sandbox.spawn(spec, pid_mode="join", pid_target=main_pid, tty=tty, stdin=stdin,
                                          cgroup_procs=self.cgroup.procs_file if self.cgroup else None)
        except (SandboxError, OSError, subprocess.SubprocessError) as e:
            raise ExecError(self._exec_failure(exec_id, "container is not running" if not self.is_running else str(e))) from None
        self.execs.add(started.process)  # the exec handler discards it when it is over
        return started.process

    @staticmethod
    def _exec_failure(exec_id: str, reason: str) -> str:
        return (
            f'error executing command in container: failed to exec in container: failed to start exec "{exec_id}": '
            f"OCI runtime exec failed: exec failed: unable to start container process: {reason}: unknown"
        )
