"""Root filesystems: a small tree per image kind, and one per node.

Made from this machine's own files, never downloaded: the shell images get Debian's static
busybox (package `busybox-static`, installed by `make deps`) with a link per applet; the
distroless nginx gets its config and binary path and no shell; a node gets a busybox OS tree
with /etc/hostname, /etc/os-release and /var/log, which node debuggers see at /host.

Image trees are read-only lower layers, built once into `var/kubesim/images/` (or
$KUBESIM_IMAGE_DIR) under a name that changes with the busybox binary and this builder, and
shared by every kubesim. Node trees are writable (a hostPath mount writes through), so each
kubesim gets its own copies in its run directory, removed when it stops or, after a SIGKILL,
by the next kubesim to start.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

BUILDER_VERSION = "1"
NONROOT = 65532
REPO_VAR = Path(__file__).resolve().parents[2] / "var"
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")

# The image's /etc/passwd (no password in it): root, and distroless' nonroot.
USERS = "".join(f"{name}:x:{uid}:{uid}:{name}:{home}:{shell}\n" for name, uid, home, shell in (
    ("root", 0, "/root", "/bin/sh"), ("daemon", 1, "/usr/sbin", "/bin/false"),
    ("nobody", 65534, "/nonexistent", "/bin/false"), ("nonroot", 65532, "/home/nonroot", "/bin/false")))
GROUP = """root:x:0:
daemon:x:1:
nogroup:x:65534:
nonroot:x:65532:
"""
HOSTS = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"

NGINX_CONF = """# Chainguard-style nginx: runs as nonroot (65532), listens on 8080, logs to stdout/stderr.
worker_processes  4;
pid /tmp/nginx.pid;
error_log /dev/stderr warn;

events {
    worker_connections  1024;
}

http {
    include       /etc/nginx/mime.types;
    default_type  application/octet-stream;
    access_log    /dev/stdout;
    sendfile      on;
    keepalive_timeout  65;

    server {
        listen       8080;
        server_name  localhost;
        location / {
            root   /usr/share/nginx/html;
            index  index.html;
        }
    }
}
"""
MIME_TYPES = """types {
    text/html  html htm;
    text/css   css;
    application/javascript  js;
    application/json  json;
    image/png  png;
}
"""
INDEX_HTML = "<!DOCTYPE html>\n<html><head><title>Welcome to nginx!</title></head>\n<body><h1>Welcome to nginx!</h1></body></html>\n"
OS_RELEASE = """PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
"""


class RootfsError(Exception):
    """The trees can't be made here (no static busybox): kubesim runs containers unisolated."""


def _is_static(path: str) -> bool:
    """An ELF without a program interpreter runs in a tree that has no libc."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if head[:4] != b"\x7fELF" or head[4] != 2:  # 64-bit only
                return False
            phoff = int.from_bytes(head[32:40], "little")
            phentsize = int.from_bytes(head[54:56], "little")
            phnum = int.from_bytes(head[56:58], "little")
            for i in range(phnum):
                f.seek(phoff + i * phentsize)
                if int.from_bytes(f.read(4), "little") == 3:  # PT_INTERP
                    return False
            return True
    except OSError:
        return False


def find_busybox() -> str:
    for candidate in (os.environ.get("KUBESIM_BUSYBOX"), *BUSYBOX_CANDIDATES):
        if candidate and _is_static(candidate):
            return candidate
    raise RootfsError("no static busybox (install Debian's busybox-static, or set KUBESIM_BUSYBOX)")


def image_dir() -> Path:
    return Path(os.environ.get("KUBESIM_IMAGE_DIR") or REPO_VAR / "kubesim" / "images")


def _write(root: Path, rel: str, text: str, mode: int = 0o644) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def _skeleton(root: Path) -> None:
    for d in ("proc", "dev", "sys", "etc", "root", "var/log", "home/nonroot"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "tmp").mkdir(exist_ok=True)
    (root / "tmp").chmod(0o1777)
    (root / "root").chmod(0o700)
    _write(root, "etc/passwd", USERS)
    _write(root, "etc/group", GROUP)
    _write(root, "etc/hosts", HOSTS)
    with contextlib.suppress(PermissionError):
        os.chown(root / "home/nonroot", NONROOT, NONROOT)


def _busybox_tree(root: Path, busybox: str) -> None:
    _skeleton(root)
    (root / "bin").mkdir(exist_ok=True)
    shutil.copy2(busybox, root / "bin/busybox")
    applets = subprocess.run([busybox, "--list-full"], capture_output=True, text=True, check=True).stdout.split()  # noqa: S603
    for applet in applets:
        link = root / applet
        if link.exists() or link.is_symlink():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to("/bin/busybox")


def _nginx_tree(root: Path) -> None:
    _skeleton(root)
    _write(root, "etc/nginx/nginx.conf", NGINX_CONF)
    _write(root, "etc/nginx/mime.types", MIME_TYPES)
    _write(root, "usr/share/nginx/html/index.html", INDEX_HTML)
    # The binary's path exists (so `ls /proc/1/root/usr/sbin` looks right); the process is
    # kubesim's stand-in, and exec'ing this file from elsewhere fails as a foreign binary would.
    _write(root, "usr/sbin/nginx", "\x7fELF nginx/1.27.4 (kubesim stand-in)\n", 0o755)
    for d in ("var/lib/nginx/tmp", "var/log/nginx"):
        (root / d).mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(PermissionError):
            os.chown(root / d, NONROOT, NONROOT)
    (root / "var/log/nginx/access.log").symlink_to("/dev/stdout")
    (root / "var/log/nginx/error.log").symlink_to("/dev/stderr")


def _node_tree(root: Path, busybox: str, node: str) -> None:
    _busybox_tree(root, busybox)
    _write(root, "etc/hostname", node + "\n")
    _write(root, "etc/os-release", OS_RELEASE)
    _write(root, "etc/machine-id", hashlib.sha256(node.encode()).hexdigest()[:32] + "\n")
    _write(root, "etc/kubernetes/kubelet.conf", "# kubesim node: the kubelet's kubeconfig would be here\n", 0o600)
    _write(root, "var/lib/kubelet/config.yaml", "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n")
    _write(root, "var/log/syslog", f"{node} systemd[1]: Started kubelet.service - kubelet: The Kubernetes Node Agent.\n")
    _write(root, "var/log/kubelet.log", f"I0101 00:00:00.000000 1 server.go:487] \"Kubelet version\" node=\"{node}\"\n")
    for d in ("var/log/pods", "var/log/containers", "var/lib/containerd"):
        (root / d).mkdir(parents=True, exist_ok=True)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _digest(path: str) -> str:
    h = hashlib.sha256(BUILDER_VERSION.encode())
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()[:12]


class Images:
    """The read-only image trees, built on first use and then shared."""

    def __init__(self, busybox: str | None = None, directory: Path | None = None) -> None:
        self.busybox = busybox or find_busybox()
        self.directory = directory or image_dir()
        tag = _digest(self.busybox)
        self.shell = self._ensure(f"busybox-{tag}", lambda root: _busybox_tree(root, self.busybox))
        self.nginx = self._ensure(f"distroless-nginx-{tag}", _nginx_tree)

    def _ensure(self, name: str, build: object) -> Path:
        target = self.directory / name
        if target.is_dir():
            return target
        with _locked(self.directory / ".lock"):
            if target.is_dir():  # another kubesim built it while we waited
                return target
            tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=self.directory))
            try:
                tmp.chmod(0o755)
                build(tmp)  # type: ignore[operator]
                tmp.rename(target)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return target

    def node_tree(self, root: Path, node: str) -> Path:
        if not root.is_dir():
            tmp = root.with_name(root.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            tmp.chmod(0o755)
            _node_tree(tmp, self.busybox, node)
            tmp.rename(root)
        return root
