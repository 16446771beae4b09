"""A cgroup per container, as a real runtime keeps one: the container's processes as one group.

runc puts a container's main process and every exec into the container's cgroup; when the
main process exits, the whole cgroup is killed (nothing the shell left behind survives, even
a `setsid` daemon), and membership is kernel state a process inside can't forge or leave
without write access to the cgroup filesystem. kubesim does the same with cgroup v2:

    <cgroup2 mount><kubesim's own cgroup>/kubesim-<pid>-<n>/<container>-<n>

(<pid>-<n>: tests run several kubesims in one process, each with its own tree.)

Only the cgroup core is used (cgroup.procs, cgroup.kill, cgroup.events): no controllers, so
the "no internal processes" rule doesn't apply and kubesim's own cgroup may hold processes.
Where cgroup v2 is missing or not writable (no root), `CgroupRoot.create()` returns None and
containers fall back to tracking the main process's session, which a `setsid` escapes.
A kubesim killed with SIGKILL leaves its directory behind; the next start removes it.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import signal
import time
from pathlib import Path

log = logging.getLogger(__name__)

PREFIX = "kubesim-"
_instances = itertools.count(1)


def cgroup2_mount() -> Path | None:
    """Where the unified (v2) hierarchy is mounted, from /proc/self/mountinfo."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        # "... mount-point options - fstype source super-options": fstype follows the " - ".
        before, _, after = line.partition(" - ")
        if after.split(" ", 1)[0] == "cgroup2":
            return Path(before.split(" ")[4])
    return None


def own_cgroup() -> str:
    """This process's cgroup v2 path ("0::/path" in /proc/self/cgroup)."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            return line[3:].strip() or "/"
    return "/"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Cgroup:
    """One container's cgroup."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.procs_file = str(path / "cgroup.procs")

    def members(self) -> list[int]:
        try:
            return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except (FileNotFoundError, ValueError):
            return []

    def populated(self) -> bool:
        try:
            return "populated 1" in (self.path / "cgroup.events").read_text()
        except FileNotFoundError:
            return False

    def kill(self) -> None:
        """SIGKILL every process in the group (cgroup.kill: atomic, also catches forks in flight)."""
        try:
            (self.path / "cgroup.kill").write_text("1")
            return
        except FileNotFoundError:
            if not self.path.exists():
                return
        except OSError:
            pass
        # Kernels before 5.14 have no cgroup.kill: kill members until none is left.
        for _ in range(100):
            pids = self.members()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def remove(self) -> None:
        """Kill what is left and remove the directory (a populated cgroup can't be removed)."""
        for _ in range(200):
            if not self.path.exists():
                return
            self.kill()
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.005)
        log.warning("could not remove cgroup %s", self.path)


class CgroupRoot:
    """kubesim's own directory of container cgroups."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._counter = itertools.count(1)

    @classmethod
    def create(cls) -> CgroupRoot | None:
        mount = cgroup2_mount()
        if mount is None:
            log.warning("kubesim: no cgroup v2 hierarchy; a container's processes are tracked by session only")
            return None
        parent = mount / own_cgroup().lstrip("/")
        remove_stale(parent)
        path = parent / f"{PREFIX}{os.getpid()}-{next(_instances)}"
        try:
            path.mkdir()
            probe = path / "probe"
            probe.mkdir(exist_ok=True)
            probe.rmdir()
        except OSError as exc:
            log.warning("kubesim: can't create cgroups under %s (%s); a container's processes are tracked by session only",
                        parent, exc.strerror)
            return None
        return cls(path)

    def new(self, name: str) -> Cgroup:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:200]
        path = self.path / f"{safe}-{next(self._counter)}"
        path.mkdir()
        return Cgroup(path)

    def close(self) -> None:
        for child in list(self.path.iterdir()) if self.path.exists() else []:
            if child.is_dir():
                Cgroup(child).remove()
        Cgroup(self.path).remove()


def remove_stale(parent: Path) -> int:
    """Remove the cgroups of kubesims that died without cleaning up (their processes first)."""
    removed = 0
    try:
        entries = list(parent.glob(f"{PREFIX}*"))
    except OSError:
        return 0
    for entry in entries:
        pid = entry.name[len(PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        for child in entry.iterdir():
            if child.is_dir():
                Cgroup(child).remove()
        Cgroup(entry).remove()
        removed += 1
    if removed:
        log.warning("kubesim: removed %d cgroup tree(s) left by an earlier kubesim", removed)
    return removed
