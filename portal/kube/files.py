"""Reading and writing files through a running debug container, with exec (docs/kube-debug-wire.md §5).

`kubectl cp` needs `tar` in the container it copies from; a distroless target has none. So the
debug container does the work: it reads the target's files through /proc/<target>/root (the
kernel checks ptrace access: the profile decides, as for a person in the shell), or the node's
at /host, and writes uploads into its own filesystem. Only the debug image's `sh`, `stat`,
`cat` and `tar` are used (busybox has them). Nothing is held in memory: output is yielded as
it arrives, input is sent as it is read.
"""

from __future__ import annotations

import posixpath
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

from portal.kube.attach import (
    STATUS,
    STDERR,
    STDOUT,
    AttachError,
    ChannelStream,
    StreamEvent,
    _exit_code,
    _open,
    exec_url,
)
from portal.kube.client import get_client
from portal.kube.config import KubeConnection
from portal.kube.errors import KubeError

MAX_PATH = 4096
STREAM_TIMEOUT = 15.0  # to open the exec stream; the transfer itself is bounded by its size

# $1: the path in the debug container. One word on stdout says what it is.
STAT_SCRIPT = """
p="$1"
if [ ! -e "$p" ] && [ ! -L "$p" ]; then
  if ls -d "$p" 2>&1 | grep -q 'ermission denied'; then echo denied; else echo missing; fi
  exit 0
fi
if [ -d "$p" ]; then
  if [ -r "$p" ] && [ -x "$p" ]; then echo dir; else echo denied; fi
  exit 0
fi
if [ -f "$p" ]; then
  if [ -r "$p" ]; then echo "file $(stat -L -c %s "$p")"; else echo denied; fi
  exit 0
fi
echo special
"""
# $1: the target container's id. Its processes are the ones whose cgroup names it (containerd
# names a container's cgroup after its id: .../cri-containerd-<id>.scope); the lowest pid is its
# first process. /proc/<pid>/cgroup is readable by anyone, whatever the profile.
FIND_SCRIPT = """
for d in /proc/[0-9]*; do
  grep -q -- "$1" "$d/cgroup" 2>/dev/null && echo "${d#/proc/}"
done | sort -n | head -n 1
"""
READ_FILE = 'exec cat -- "$1"'
READ_DIR = 'cd -- "$(dirname -- "$1")" && exec tar czf - -- "$(basename -- "$1")"'
WRITE_FILE = 'mkdir -p -- "$(dirname -- "$1")" && exec cat > "$1"'


class FileError(Exception):
    """A transfer that can't be done; `message` is safe to show, `status` the HTTP answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class PathInfo:
    kind: str  # "file" | "dir"
    size: int | None  # a file's size; None for a directory (its archive's size is not known ahead)


def clean_path(path: str) -> str:
    """An absolute path without `..`, NUL or line breaks; raises FileError."""
    if not path or not path.startswith("/"):
        raise FileError("Give an absolute path, e.g. /etc/nginx/nginx.conf.")
    if len(path) > MAX_PATH or any(c in path for c in "\x00\n\r"):
        raise FileError("That path can't be used.")
    cleaned = posixpath.normpath(path)
    return "/" + cleaned.lstrip("/")


def inside(root: str, path: str) -> str:
    """`path` (clean) as the debug container reaches it under `root` (/proc/1/root, /host, or /)."""
    return path if root == "/" else root.rstrip("/") + path


def target_pid(namespace: str, pod: str, container: str, target_id: str) -> int:
    """The pid, as the debug container sees it, of the first process of the container `target_id`
    (a containerd id, from the pod's status): where a pod shares one PID namespace the target is
    not PID 1 (the pause process is)."""
    if not target_id or not all(c in "0123456789abcdef" for c in target_id):
        raise FileError("The target container has no container id yet (is it running?).", 409)
    try:
        code, output = get_client().exec_command(namespace, pod, container, ["sh", "-c", FIND_SCRIPT, "ephemera_find", target_id],
                                                 timeout=STREAM_TIMEOUT)
    except KubeError as exc:
        raise FileError(f"The debug container can't be reached: {exc.message}", 502) from None
    found = output.strip()
    if code != 0 or not found.isdigit():
        raise FileError("The target container's processes can't be seen from the debug container "
                        "(is the target running?).", 409)
    return int(found)


def stat_path(namespace: str, pod: str, container: str, path: str) -> PathInfo:
    """What is at `path` (as the debug container reaches it); raises FileError for what can't be sent."""
    try:
        code, output = get_client().exec_command(namespace, pod, container, ["sh", "-c", STAT_SCRIPT, "ephemera_stat", path],
                                                 timeout=STREAM_TIMEOUT)
    except KubeError as exc:
        raise FileError(f"The debug container can't be reached: {exc.message}", 502) from None
    word, _, rest = output.strip().partition(" ")
    if code != 0:
        raise FileError(f"The debug container could not look at the path (exit code {code}).", 502)
    if word == "missing":
        raise FileError("No such file or directory.", 404)
    if word == "denied":
        raise FileError("Permission denied under this session's profile (reading the target's files needs "
                        "SYS_PTRACE or the target's user: `general` has it, `baseline` and `restricted` don't).", 403)
    if word == "dir":
        return PathInfo("dir", None)
    if word == "file" and rest.isdigit():
        return PathInfo("file", int(rest))
    raise FileError("Only regular files and directories can be downloaded.", 400)


async def _exec(conn: KubeConnection, *, namespace: str, pod: str, container: str, script: str, path: str,
                stdin: bool) -> ChannelStream:
    url = exec_url(conn, namespace=namespace, pod=pod, container=container,
                   command=["sh", "-c", script, "ephemera_files", path], tty=False, stdin=stdin)
    try:
        return await _open(conn, url, timeout=STREAM_TIMEOUT)
    except AttachError as exc:
        raise FileError(f"The debug container can't be reached: {exc.message}", 502) from None


class _Outcome:
    """The end of an exec: its stderr (the first 2000 bytes) and the exit code from the status channel."""

    def __init__(self) -> None:
        self.errors = bytearray()
        self.code: int | None = None

    def take(self, event: StreamEvent) -> None:
        if event.channel == STDERR and len(self.errors) < 2000:
            self.errors += event.data
        elif event.channel == STATUS:
            self.code = _exit_code(event.status or {})

    def check(self, doing: str) -> None:
        if self.code != 0:
            why = self.errors.decode("utf-8", "replace").strip().splitlines()
            raise FileError(f"The {doing} failed: {why[-1] if why else f'exit code {self.code}'}", 502)


async def read_stream(conn: KubeConnection, *, namespace: str, pod: str, container: str, path: str,
                      archive: bool) -> AsyncIterator[bytes]:
    """The file's bytes (or the directory as .tar.gz) as they come; FileError if the read fails."""
    stream = await _exec(conn, namespace=namespace, pod=pod, container=container, path=path,
                         script=READ_DIR if archive else READ_FILE, stdin=False)
    outcome = _Outcome()
    try:
        while (event := await stream.read()) is not None:
            if event.channel == STDOUT:
                yield event.data
            else:
                outcome.take(event)
    except AttachError as exc:
        raise FileError(f"The read broke off: {exc.message}", 502) from None
    finally:
        await stream.close()
    outcome.check("read")


async def write_stream(conn: KubeConnection, *, namespace: str, pod: str, container: str, path: str,
                       chunks: Iterable[bytes]) -> None:
    """Write the chunks to `path` in the debug container (its directories made as needed)."""
    stream = await _exec(conn, namespace=namespace, pod=pod, container=container, path=path, script=WRITE_FILE,
                         stdin=True)
    outcome = _Outcome()
    try:
        for chunk in chunks:
            await stream.write(chunk)
        await stream.close_stdin()
        while (event := await stream.read()) is not None:
            outcome.take(event)
    except AttachError as exc:
        raise FileError(f"The write broke off: {exc.message}", 502) from None
    finally:
        await stream.close()
    outcome.check("write")
