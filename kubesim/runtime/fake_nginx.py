"""A stand-in for distroless nginx: a master and four workers that look right in `ps`.

Run as a plain script (not `-m`) so it needs nothing from the kubesim package: the runtime
starts it as root and it drops to the image's uid itself, because the interpreter may live
somewhere the unprivileged uid cannot read.

    python fake_nginx.py serve [--uid N --gid N]   # the container's main process
    python fake_nginx.py cli ARGS...                # `kubectl exec ... -- nginx ARGS`
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time

MASTER_TITLE = "nginx: master process /usr/sbin/nginx -g daemon off;"
WORKER_TITLE = "nginx: worker process"
WORKERS = 4
VERSION = "nginx version: nginx/1.27.4"
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Without this a SIGKILLed master would leave orphaned workers behind.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _set_title(title: str) -> None:
    import setproctitle

    setproctitle.setproctitle(title)


def _drop_privileges(uid: int | None, gid: int | None) -> None:
    if uid is None or os.getuid() != 0:
        return
    os.setgroups([])
    os.setgid(gid if gid is not None else uid)
    os.setuid(uid)


def _worker(master: int) -> None:
    _die_with_parent()
    if os.getppid() != master:  # the master died before prctl took effect
        os._exit(0)
    _set_title(WORKER_TITLE)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)
    while True:
        signal.pause()


def serve(uid: int | None, gid: int | None) -> None:
    import setproctitle  # noqa: F401  (import before dropping privileges; the module path may be root-only)

    _drop_privileges(uid, gid)
    _die_with_parent()  # a credential change clears the parent-death signal the runtime set
    _set_title(MASTER_TITLE)
    master = os.getpid()
    children: list[int] = []
    for _ in range(WORKERS):
        pid = os.fork()
        if pid == 0:
            _worker(master)
        children.append(pid)

    def stop(signum: int, _frame: object) -> None:
        for child in children:
            try:
                os.kill(child, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for child in children:
            try:
                os.waitpid(child, 0)
            except ChildProcessError:
                pass
        os._exit(0)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        signal.signal(sig, stop)

    def reap(_signum: int, _frame: object) -> None:
        # As the real master does (and as a container's PID 1 must): collect any child that ends,
        # including the orphans a debug container sharing this PID namespace leaves behind.
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in children:
                children.remove(pid)

    signal.signal(signal.SIGCHLD, reap)
    while True:
        time.sleep(3600)


def cli(args: list[str]) -> int:
    if any(a in ("-v", "-V") for a in args):
        print(VERSION, file=sys.stderr)
        return 0
    if "-t" in args or "-T" in args:
        print("nginx: the configuration file /etc/nginx/nginx.conf syntax is ok", file=sys.stderr)
        print("nginx: configuration file /etc/nginx/nginx.conf test is successful", file=sys.stderr)
        return 0
    print("nginx: [emerg] bind() to 0.0.0.0:8080 failed (98: Address already in use)", file=sys.stderr)
    return 1


def main(argv: list[str]) -> int:
    if argv and argv[0] == "serve":
        uid = gid = None
        if "--uid" in argv:
            uid = int(argv[argv.index("--uid") + 1])
        if "--gid" in argv:
            gid = int(argv[argv.index("--gid") + 1])
        serve(uid, gid)
        return 0
    if argv and argv[0] == "cli":
        return cli(argv[1:])
    print("usage: fake_nginx.py serve|cli ...", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
