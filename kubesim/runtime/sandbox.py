"""Inside a kubesim container: namespaces, root filesystem, identity, then the command.

Run as a plain script (stdlib only, like fake_nginx.py) by the runtime (see isolation.py):
`nsenter --pid` puts it in the PID namespace to join or nest in (the target's, the pod's pause,
the node's); with "new_pid" it makes a new one itself and forks, its child becoming that
namespace's PID 1 while the parent waits and passes the child's end on (util-linux's `unshare
--fork` turns a SIGKILLed child into exit code 1). What a runtime does for a container after
that happens here, in this order, as runc does it:

1. enter the namespaces to share (the target's network, UTS and IPC; for an exec, also its mounts),
   and make new ones for the rest (mount, and network/UTS/IPC unless shared);
2. the root filesystem: a tmpfs (nodev: a node made with mknod can't be opened) holding an
   overlay's upper layer over the image's tree, plus hostPath binds, a fresh /proc for this PID
   namespace (its kernel knobs read-only unless privileged), a minimal /dev, and pivot_root into
   it, so nothing of the machine's own files is reachable;
3. identity: the capability bounding set from the profile, uid/gid, no_new_privs;
4. report "ok" on the runtime's socket (it reads our pid, as it sees it, from the connection), exec.

Mode "hold" is a namespace's PID 1 that only reaps: a node's init, a pod's pause process.
Spec: one JSON object in argv[1], made by isolation.Sandbox (container_spec, exec_spec, the holders).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import platform
import signal
import socket
import struct
import sys
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWNET = 0x40000000
CLONE_NEWPID = 0x20000000
NS_FLAGS = {"net": CLONE_NEWNET, "uts": CLONE_NEWUTS, "ipc": CLONE_NEWIPC, "mnt": CLONE_NEWNS}

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38

SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "arm64": 41}
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1

DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
# What Docker/containerd mask or make read-only in /proc for a non-privileged container.
PROC_READONLY = ("sys", "sysrq-trigger", "irq", "bus", "fs")
PROC_MASKED = ("kcore", "keys", "timer_list", "sched_debug", "latency_stats")

_libc = ctypes.CDLL(None, use_errno=True)


class SetupError(Exception):
    pass


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise SetupError(f"{what}: {os.strerror(err)}")


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    _check(
        _libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {fstype or 'bind'} on {target}",
    )


def _enter(kind: str, pid: int) -> None:
    fd = os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _check(_libc.setns(fd, NS_FLAGS[kind]), f"setns {kind} of {pid}")
    finally:
        os.close(fd)


def _loopback_up() -> None:
    # A new network namespace starts with lo down; `ip link set lo up` without iproute2.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifreq = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH14s", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, ifreq))[1]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", flags | IFF_UP, b""))


def _makedirs(path: str) -> None:
    os.makedirs(path, exist_ok=True)


def _touch(path: str) -> None:
    if not os.path.exists(path):
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))


def _bind(source: str, target: str, readonly: bool, extra: int = 0) -> None:
    mount(source, target, None, MS_BIND | MS_REC)
    if readonly or extra:
        mount(None, target, None, MS_REMOUNT | MS_BIND | (MS_RDONLY if readonly else 0) | extra)


def _root_filesystem(spec: dict[str, Any]) -> str:
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing we mount leaks back to the machine
    scratch = spec["scratch"]
    privileged = bool(spec.get("privileged"))
    nodev = 0 if privileged else MS_NODEV
    mount("tmpfs", scratch, "tmpfs", MS_NOSUID | nodev, f"mode=0755,size={spec.get('scratch_size', '256m')}")
    for d in ("upper", "work", "root"):
        os.mkdir(os.path.join(scratch, d), 0o755)
    root = os.path.join(scratch, "root")
    lower = spec["image_root"]
    mount("overlay", root, "overlay", nodev,
          f"lowerdir={lower},upperdir={scratch}/upper,workdir={scratch}/work")
    for b in spec.get("binds", []):
        target = root + "/" + b["target"].strip("/")
        if os.path.isdir(b["source"]):
            _makedirs(target)
        else:
            _makedirs(os.path.dirname(target))
            _touch(target)
        _bind(b["source"], target, bool(b.get("readonly")))
    proc = root + "/proc"
    _makedirs(proc)
    mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    dev = root + "/dev"
    _makedirs(dev)
    mount("tmpfs", dev, "tmpfs", MS_NOSUID, "mode=0755,size=65536k")
    for name in DEVICES:
        _touch(f"{dev}/{name}")
        mount(f"/dev/{name}", f"{dev}/{name}", None, MS_BIND)
    for name, to in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                     ("stderr", "/proc/self/fd/2")):
        os.symlink(to, f"{dev}/{name}")
    os.mkdir(f"{dev}/pts")
    mount("tmpfs", f"{dev}/pts", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k")
    if os.isatty(0):
        # The terminal the runtime opened for us, and no other: the machine's other terminals
        # (other sessions') stay out of reach.
        host_tty = os.ttyname(0)
        if host_tty.startswith("/dev/pts/"):
            _touch(f"{dev}/pts/{host_tty.rsplit('/', 1)[1]}")
            mount(host_tty, f"{dev}/pts/{host_tty.rsplit('/', 1)[1]}", None, MS_BIND)
    os.mkdir(f"{dev}/shm", 0o1777)
    mount("shm", f"{dev}/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k")
    if not privileged:
        for name in PROC_READONLY:
            path = f"{proc}/{name}"
            if os.path.exists(path):
                _bind(path, path, True, MS_NOSUID | MS_NODEV | MS_NOEXEC)
        for name in PROC_MASKED:
            path = f"{proc}/{name}"
            if os.path.exists(path):
                mount("/dev/null", path, None, MS_BIND)
    sys_dir = root + "/sys"
    _makedirs(sys_dir)
    try:
        mount("sysfs", sys_dir, "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | (0 if privileged else MS_RDONLY))
    except SetupError:
        pass  # /sys is a nicety; nothing in a debug session depends on it
    return root


def _pivot(root: str) -> None:
    os.chdir(root)
    os.mkdir(".oldroot", 0o700)
    number = SYS_PIVOT_ROOT.get(platform.machine())
    if number is None:
        raise SetupError(f"pivot_root: unknown syscall number on {platform.machine()}")
    _check(_libc.syscall(number, b".", b".oldroot"), "pivot_root")
    os.chdir("/")
    _check(_libc.umount2(b"/.oldroot", MNT_DETACH), "umount the old root")
    os.rmdir("/.oldroot")


def _identity(spec: dict[str, Any]) -> None:
    if not spec.get("privileged"):
        keep = set(spec.get("caps", []))
        last = int(spec.get("cap_last", 40))
        for cap in range(last + 1):
            if cap not in keep:
                _check(_libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"drop capability {cap}")
    uid, gid = int(spec.get("uid", 0)), int(spec.get("gid", 0))
    os.setgroups([gid] if gid else [])
    os.setgid(gid)
    if uid:
        os.setuid(uid)  # no keepcaps: every capability is gone with root
        _libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)  # as after runc's exec: the process stays ptrace-readable by its uid
    if spec.get("no_new_privs"):
        _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    # A credential change clears the parent-death signal: set it last.
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


_report_sock: socket.socket | None = None


def _connect(spec: dict[str, Any]) -> None:
    """Connect to the runtime first thing, while its socket is still in reach (before pivot_root):
    it reads our pid from the connection (SO_PEERCRED) as it sees it. Close-on-exec: a successful
    exec closes it."""
    global _report_sock
    if spec.get("report"):
        _report_sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        _report_sock.connect(spec["report"])


def _report(message: bytes, *, close: bool = False) -> None:
    global _report_sock
    if _report_sock is None:
        return
    try:
        _report_sock.send(message)
    except OSError:
        pass
    if close:
        _report_sock.close()
        _report_sock = None


def _hold(spec: dict[str, Any]) -> None:
    """PID 1 of a namespace that runs nothing itself: reap orphans until told to stop."""
    try:
        import setproctitle

        setproctitle.setproctitle(spec.get("title", "/pause"))
    except ImportError:
        pass

    def reap(_sig: int, _frame: object) -> None:
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return

    signal.signal(signal.SIGCHLD, reap)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    _report(b"ok", close=True)
    while True:
        signal.pause()


def _exec(spec: dict[str, Any]) -> None:
    argv: list[str] = spec["argv"]
    env: dict[str, str] = spec["env"]
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL)  # the runtime's wrapper ignores ^C; the container must not
    builtin = spec.get("builtin")
    if builtin:
        import fake_nginx  # type: ignore[import-not-found]  # preloaded

        _report(b"ok", close=True)
        if builtin == "nginx-serve":
            fake_nginx.serve(None, None)
            os._exit(0)
        code = fake_nginx.cli(argv[1:])
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    _report(b"ok")
    try:
        os.execvpe(argv[0], argv, env)  # noqa: S606 (the container's command, as runc runs it)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            why = (f'exec: "{argv[0]}": stat {argv[0]}: no such file or directory' if "/" in argv[0]
                   else f'exec: "{argv[0]}": executable file not found in $PATH')
        elif e.errno == errno.EACCES:
            why = f'exec: "{argv[0]}": permission denied'
        else:
            why = f'exec: "{argv[0]}": {e.strerror}'
        _report(f"error:{why}".encode())
        os.write(2, f"{why}\r\n".encode())
        os._exit(127)


def _preload(spec: dict[str, Any]) -> None:
    """Import now what runs after pivot_root, when the interpreter's files are out of reach."""
    try:
        import setproctitle  # noqa: F401
    except ImportError:
        pass
    if spec.get("builtin"):
        sys.path.insert(0, spec["builtin_path"])
        import fake_nginx  # type: ignore[import-not-found]  # noqa: F401


def _new_pid_namespace() -> None:
    """Become PID 1 of a new PID namespace: unshare, fork; the parent stays as the waiter that
    reports the child's end as its own (exit code, or death by the same signal), which is what
    the runtime sees. (util-linux's `unshare --fork` turns a SIGKILLed child into exit code 1.)"""
    _check(_libc.unshare(CLONE_NEWPID), "unshare pid")
    child = os.fork()
    if child == 0:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # (getppid() is 0 here: the parent is outside)
        return
    try:  # what a node's `ps` shows for it: the shim, not this script and its spec
        import setproctitle

        setproctitle.setproctitle("containerd-shim-runc-v2 -namespace k8s.io")
    except ImportError:
        pass
    _, status = os.waitpid(child, 0)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL) if sig not in (signal.SIGKILL, signal.SIGSTOP) else None
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)
    os._exit(os.WEXITSTATUS(status))


def main() -> None:
    spec: dict[str, Any] = json.loads(sys.argv[1])
    mode = spec.get("mode", "run")
    if spec.get("new_pid"):
        _new_pid_namespace()
    _connect(spec)
    _preload(spec)
    try:
        for kind in ("net", "ipc", "uts"):
            if kind in spec.get("join", {}):
                _enter(kind, int(spec["join"][kind]))
        new = 0 if mode == "exec" else CLONE_NEWNS
        for kind in spec.get("new", []):
            new |= NS_FLAGS[kind]
        if new:
            _check(_libc.unshare(new), "unshare")
        if "net" in spec.get("new", []):
            _loopback_up()
        if spec.get("hostname"):
            name = spec["hostname"].encode()
            _check(_libc.sethostname(name, len(name)), "sethostname")
        if mode == "exec":
            _enter("mnt", int(spec["join"]["mnt"]))  # root and cwd become the container's
        elif mode == "hold":
            if spec.get("node_root"):
                mount(None, "/", None, MS_REC | MS_PRIVATE)
                mount(spec["node_root"], spec["node_root"], None, MS_BIND | MS_REC)
                _pivot(spec["node_root"])
            elif spec.get("scratch"):
                mount(None, "/", None, MS_REC | MS_PRIVATE)
                mount("tmpfs", spec["scratch"], "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64k")
                _pivot(spec["scratch"])
        else:
            _pivot(_root_filesystem(spec))
        if mode == "hold":
            _hold(spec)
            return
        try:
            os.chdir(spec.get("cwd") or "/")
        except OSError:
            os.chdir("/")
        _identity(spec)
    except (SetupError, OSError) as e:
        _report(f"error:container setup failed: {e}".encode())
        os._exit(126)
    _exec(spec)


if __name__ == "__main__":
    main()
