"""Containers that are isolated as a kubelet isolates them, from real Linux primitives.

The runtime side of sandbox.py. For each container it decides, from the pod spec, what the
kubelet and runc would: which namespaces are new and which are shared, the root filesystem,
the uid and the capability set; then starts the process through util-linux's `nsenter` (the
only ways into a PID namespace are to be forked in it) and sandbox.py, which makes the rest.

- A node is a PID namespace whose PID 1 (`/sbin/init`, a holder) has the node's tree as its
  root and the node's name as hostname. Every pod on the node nests inside it, so a `hostPID`
  debugger (which joins it) sees the processes of that node's pods and no other node's.
- A pod is a pause holder (`/pause`) with the pod's network, UTS (hostname = pod name) and IPC
  namespaces, which every container of the pod joins; with shareProcessNamespace, its PID
  namespace too. Otherwise each container has a PID namespace of its own, its entrypoint PID 1.
- An ephemeral container with targetContainerName joins the target's PID namespace.
- An exec joins every namespace of the container's main process, with the container's identity.

Where this can't work (not root, no namespaces, no static busybox) `Sandbox.create()` returns
None with a warning and containers are plain processes, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cgroups import CgroupRoot
from .images import Image, ImageKind
from .logbuffer import LogBuffer
from .process import Process
from .rootfs import Images, RootfsError

log = logging.getLogger(__name__)

SANDBOX = str(Path(__file__).with_name("sandbox.py"))
FAKE_NGINX_DIR = str(Path(__file__).parent)
REPORT_TIMEOUT = 15.0
RUN_PREFIX = "kubesim-"
_instances = itertools.count(1)

CAPS = {
    "CHOWN": 0, "DAC_OVERRIDE": 1, "DAC_READ_SEARCH": 2, "FOWNER": 3, "FSETID": 4, "KILL": 5, "SETGID": 6,
    "SETUID": 7, "SETPCAP": 8, "LINUX_IMMUTABLE": 9, "NET_BIND_SERVICE": 10, "NET_BROADCAST": 11,
    "NET_ADMIN": 12, "NET_RAW": 13, "IPC_LOCK": 14, "IPC_OWNER": 15, "SYS_MODULE": 16, "SYS_RAWIO": 17,
    "SYS_CHROOT": 18, "SYS_PTRACE": 19, "SYS_PACCT": 20, "SYS_ADMIN": 21, "SYS_BOOT": 22, "SYS_NICE": 23,
    "SYS_RESOURCE": 24, "SYS_TIME": 25, "SYS_TTY_CONFIG": 26, "MKNOD": 27, "LEASE": 28, "AUDIT_WRITE": 29,
    "AUDIT_CONTROL": 30, "SETFCAP": 31, "MAC_OVERRIDE": 32, "MAC_ADMIN": 33, "SYSLOG": 34, "WAKE_ALARM": 35,
    "BLOCK_SUSPEND": 36, "AUDIT_READ": 37, "PERFMON": 38, "BPF": 39, "CHECKPOINT_RESTORE": 40,
}
# containerd's default set for a container that asks for nothing.
DEFAULT_CAPS = ("CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID", "SETFCAP",
                "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE")


class SandboxError(Exception):
    """The container could not be set up; the text says why (shown as the container's start error)."""


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int
    privileged: bool
    caps: tuple[int, ...]
    no_new_privs: bool

    def spec(self, cap_last: int) -> dict[str, Any]:
        return {"uid": self.uid, "gid": self.gid, "privileged": self.privileged, "caps": list(self.caps),
                "cap_last": cap_last, "no_new_privs": self.no_new_privs}


def _cap_names(values: list[str] | None) -> set[str]:
    return {v.upper().removeprefix("CAP_") for v in values or []}


def capabilities(security: dict[str, Any]) -> tuple[int, ...]:
    """The bounding set, as containerd computes it: defaults, ALL in add or drop, then add, then drop."""
    caps_spec = security.get("capabilities") or {}
    add, drop = _cap_names(caps_spec.get("add")), _cap_names(caps_spec.get("drop"))
    caps = set(DEFAULT_CAPS)
    if "ALL" in add:
        caps = set(CAPS)
    if "ALL" in drop:
        caps = set()
    caps |= {c for c in add if c in CAPS}
    caps -= drop
    return tuple(sorted(CAPS[c] for c in caps))


def identity(pod: dict[str, Any], spec: dict[str, Any], image: Image) -> Identity:
    pod_sc = (pod.get("spec") or {}).get("securityContext") or {}
    sc = spec.get("securityContext") or {}
    image_user = image.user
    uid = sc.get("runAsUser", pod_sc.get("runAsUser", image_user))
    gid = sc.get("runAsGroup", pod_sc.get("runAsGroup", image_user if uid == image_user else 0))
    privileged = bool(sc.get("privileged"))
    return Identity(
        uid=int(uid),
        gid=int(gid),
        privileged=privileged,
        caps=tuple(sorted(CAPS.values())) if privileged else capabilities(sc),
        no_new_privs=sc.get("allowPrivilegeEscalation") is False,
    )


def _remove_stale(parent: Path) -> None:
    for entry in parent.glob(f"{RUN_PREFIX}*"):
        pid = entry.name[len(RUN_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(entry, ignore_errors=True)


def probe() -> str | None:
    """Why isolation can't work here, or None when it can."""
    if os.geteuid() != 0:
        return "not running as root"
    for tool in ("unshare", "nsenter"):
        if shutil.which(tool) is None:
            return f"{tool} (util-linux) is not on PATH"
    try:
        result = subprocess.run(  # noqa: S603
            ["unshare", "--pid", "--fork", "--mount", "--uts", "--ipc", "--net", "true"],  # noqa: S607
            capture_output=True, timeout=10, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unshare failed: {e}"
    if result.returncode != 0:
        return f"the kernel refuses namespaces: {result.stderr.decode(errors='replace').strip()}"
    return None


@dataclass
class _Holder:
    process: Process
    pid: int  # as this runtime sees it


@dataclass
class Started:
    process: Process
    pid: int  # the container's own first process (PID 1 of its namespace, or its member), host view


@dataclass
class Sandbox:
    images: Images
    run_dir: Path
    cgroups: CgroupRoot | None
    cap_last: int
    _nodes: dict[str, _Holder] = field(default_factory=dict)
    _pods: dict[tuple[str, str], _Holder] = field(default_factory=dict)
    _locks: dict[object, asyncio.Lock] = field(default_factory=dict)
    closed: bool = False

    @classmethod
    def create(cls, cgroups: CgroupRoot | None) -> Sandbox | None:
        if os.environ.get("KUBESIM_ISOLATION", "").lower() in ("0", "off", "false", "no"):
            log.warning("kubesim: KUBESIM_ISOLATION=off: containers are plain processes on this machine")
            return None
        why = probe()
        images: Images | None = None
        if why is None:
            try:
                images = Images()
            except (RootfsError, OSError, subprocess.SubprocessError) as e:
                why = str(e)
        if why is not None or images is None:
            log.warning("kubesim: containers are NOT isolated (%s): they are plain processes on this machine, "
                        "see every process and file of it, and profiles make no difference", why)
            return None
        parent = Path(os.environ.get("KUBESIM_RUN_DIR") or Path("/run") / "kubesim")
        parent.mkdir(parents=True, exist_ok=True)
        parent.chmod(0o700)
        _remove_stale(parent)
        run_dir = parent / f"{RUN_PREFIX}{os.getpid()}-{next(_instances)}"
        for sub in ("scratch", "nodes", "sock"):
            (run_dir / sub).mkdir(parents=True)
        run_dir.chmod(0o700)
        cap_last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
        return cls(images=images, run_dir=run_dir, cgroups=cgroups, cap_last=cap_last)

    def image_root(self, image: Image) -> Path:
        return self.images.nginx if image.kind is ImageKind.DISTROLESS_NGINX else self.images.shell

    def node_root(self, node: str) -> Path:
        return self.images.node_tree(self.run_dir / "nodes" / (node or "node"), node or "node")

    def _lock(self, key: object) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    # --- starting a process in the sandbox --------------------------------------------------------

    @staticmethod
    def _wrapper(pid_target: int | None) -> list[str]:
        """How to be forked in the right PID namespace: nsenter's child is in pid_target's. (A new
        namespace, nested in pid_target's or not, is made by sandbox.py itself: "new_pid".)"""
        return ["nsenter", f"--target={pid_target}", "--pid", "--"] if pid_target else []

    async def spawn(
        self, spec: dict[str, Any], *, pid_mode: str, pid_target: int | None, tty: bool, stdin: bool,
        log_buffer: LogBuffer | None = None, cgroup_procs: str | None = None, size: tuple[int, int] = (80, 24),
    ) -> Started:
        if self.closed:
            raise SandboxError("the runtime is shutting down")
        path = self.run_dir / "sock" / secrets.token_hex(8)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        try:
            listener.bind(str(path))
            listener.listen(1)
            listener.setblocking(False)
            spec = {**spec, "report": str(path), "new_pid": pid_mode == "new"}
            argv = [*self._wrapper(pid_target), sys.executable, "-E", "-s", SANDBOX, json.dumps(spec)]
            process = Process(argv, tty=tty, stdin=stdin, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                              log=log_buffer, cgroup_procs=cgroup_procs, size=size, ignore_interrupts=True, gated=True)
            try:
                pid = await self._await_report(listener, process)
            except BaseException:
                process.signal_group(signal.SIGKILL)
                process.open_output()
                raise
            return Started(process, pid)
        finally:
            listener.close()
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    @staticmethod
    async def _await_report(listener: socket.socket, process: Process) -> int:
        loop = asyncio.get_running_loop()
        accept = asyncio.ensure_future(loop.sock_accept(listener))
        exited = asyncio.ensure_future(process.exited.wait())
        try:
            done, _ = await asyncio.wait({accept, exited}, timeout=REPORT_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
        finally:
            exited.cancel()
        if accept not in done:
            accept.cancel()
            raise SandboxError("container setup failed: the process ended before it was set up"
                               if done else "container setup timed out")
        conn, _ = accept.result()
        with conn:
            pid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[0]
            try:
                message = await asyncio.wait_for(loop.sock_recv(conn, 4096), REPORT_TIMEOUT)
            except TimeoutError:
                raise SandboxError("container setup timed out") from None
            if message == b"ok":
                # Then the end of the connection: a successful exec closes it (close-on-exec), and
                # from then on /proc/PID is the command, not sandbox.py.
                try:
                    message = await asyncio.wait_for(loop.sock_recv(conn, 4096), REPORT_TIMEOUT) or b"ok"
                except TimeoutError:
                    raise SandboxError("container setup timed out") from None
        if message.startswith(b"error:"):
            raise SandboxError(message[6:].decode(errors="replace"))
        if message != b"ok":
            raise SandboxError("container setup failed: the process ended before it was set up")
        return pid

    # --- nodes and pods ----------------------------------------------------------------------------

    async def node_pid(self, node: str) -> int:
        """PID 1 of the node's namespace (started on first use): every pod on the node nests in it."""
        async with self._lock(("node", node)):
            holder = self._nodes.get(node)
            if holder is not None and not holder.process.exited.is_set():
                return holder.pid
            root = await asyncio.to_thread(self.node_root, node)
            spec = {"mode": "hold", "title": "/sbin/init", "new": ["uts", "ipc"], "hostname": node or "node",
                    "node_root": str(root)}
            cgroup = self.cgroups.new(f"node_{node}") if self.cgroups else None
            started = await self.spawn(spec, pid_mode="new", pid_target=None, tty=False, stdin=False,
                                       cgroup_procs=cgroup.procs_file if cgroup else None)
            self._nodes[node] = _Holder(started.process, started.pid)
            return started.pid

    async def pod_pid(self, pod: dict[str, Any]) -> int:
        """The pod's pause holder: its network, UTS and IPC namespaces (and PID, when shared)."""
        meta, spec = pod["metadata"], pod.get("spec") or {}
        key = (meta.get("namespace", "default"), meta["name"])
        async with self._lock(("pod", key)):
            holder = self._pods.get(key)
            if holder is not None and not holder.process.exited.is_set():
                return holder.pid
            node_pid = await self.node_pid(spec.get("nodeName") or "")
            join: dict[str, int] = {}
            new: list[str] = []
            if spec.get("hostNetwork"):
                join["uts"] = node_pid  # the node's hostname; the machine's network, as the node's
            else:
                new += ["net", "uts"]
            if spec.get("hostIPC"):
                join["ipc"] = node_pid
            else:
                new.append("ipc")
            hold = {"mode": "hold", "title": "/pause", "join": join, "new": new,
                    "hostname": None if spec.get("hostNetwork") else meta["name"], "scratch": str(self.run_dir / "scratch")}
            cgroup = self.cgroups.new(f"pause_{key[0]}_{key[1]}") if self.cgroups else None
            started = await self.spawn(hold, pid_mode="new", pid_target=node_pid, tty=False, stdin=False,
                                       cgroup_procs=cgroup.procs_file if cgroup else None)
            self._pods[key] = _Holder(started.process, started.pid)
            return started.pid

    async def stop_pod(self, namespace: str, name: str) -> None:
        holder = self._pods.pop((namespace, name), None)
        if holder is not None:
            await holder.process.terminate(0.2)

    async def close(self) -> None:
        self.closed = True
        holders = [*self._pods.values(), *self._nodes.values()]
        self._pods.clear()
        self._nodes.clear()
        await asyncio.gather(*(h.process.terminate(0.2) for h in holders), return_exceptions=True)
        await asyncio.to_thread(shutil.rmtree, self.run_dir, True)

    # --- containers --------------------------------------------------------------------------------

    def container_spec(self, pod: dict[str, Any], spec: dict[str, Any], image: Image, pause_pid: int,
                       argv: list[str], env: dict[str, str], builtin: str | None) -> dict[str, Any]:
        pod_spec = pod.get("spec") or {}
        volumes = {v.get("name"): v for v in pod_spec.get("volumes") or []}
        node_root = self.node_root(pod_spec.get("nodeName") or "")
        binds = []
        for m in spec.get("volumeMounts") or []:
            host_path = (volumes.get(m.get("name")) or {}).get("hostPath")
            if host_path and m.get("mountPath"):
                source = (node_root / str(host_path.get("path", "/")).lstrip("/")).resolve()
                if not str(source).startswith(str(node_root)):
                    continue  # a path that climbs out of the node's tree
                if not source.exists() and host_path.get("type") in ("DirectoryOrCreate", "", None):
                    source.mkdir(parents=True, exist_ok=True)
                binds.append({"source": str(source), "target": m["mountPath"], "readonly": bool(m.get("readOnly"))})
        return {
            "mode": "run",
            "join": {"net": pause_pid, "uts": pause_pid, "ipc": pause_pid},
            "image_root": str(self.image_root(image)),
            "scratch": str(self.run_dir / "scratch"),
            "binds": binds,
            **identity(pod, spec, image).spec(self.cap_last),
            "argv": argv,
            "env": env,
            "cwd": spec.get("workingDir") or "/",
            "builtin": builtin,
            "builtin_path": FAKE_NGINX_DIR,
        }

    async def pid_namespace(self, pod: dict[str, Any], spec: dict[str, Any], target_pid: int | None) -> tuple[str, int | None]:
        """Where the container's PID namespace is: ("join", pid) or ("new", the node's pid to nest in)."""
        pod_spec = pod.get("spec") or {}
        node_pid = await self.node_pid(pod_spec.get("nodeName") or "")
        if pod_spec.get("hostPID"):
            return "join", node_pid
        if target_pid is not None:
            return "join", target_pid
        if pod_spec.get("shareProcessNamespace"):
            return "join", await self.pod_pid(pod)
        return "new", node_pid

    def exec_spec(self, pod: dict[str, Any], spec: dict[str, Any], image: Image, main_pid: int,
                  argv: list[str], env: dict[str, str], builtin: str | None) -> dict[str, Any]:
        return {
            "mode": "exec",
            "join": {"net": main_pid, "uts": main_pid, "ipc": main_pid, "mnt": main_pid},
            **identity(pod, spec, image).spec(self.cap_last),
            "argv": argv,
            "env": env,
            "cwd": spec.get("workingDir") or "/",
            "builtin": builtin,
            "builtin_path": FAKE_NGINX_DIR,
        }

    @staticmethod
    def resolve(root: str, argv0: str, path_env: str) -> str | None:
        """Whether argv0 would be found under root (an image's tree, or /proc/PID/root of a container)."""
        # lexists: the image's links are absolute ("/bin/busybox"), meaningful only inside.
        if "/" in argv0:
            return argv0 if os.path.lexists(root + "/" + argv0.lstrip("/")) else None
        for d in path_env.split(":"):
            candidate = f"{root}/{d.strip('/')}/{argv0}"
            if d and os.path.lexists(candidate):
                return f"{d.rstrip('/')}/{argv0}"
        return None
