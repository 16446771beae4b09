"""Local processes standing in for container processes: PTY or pipes, own process group, async I/O.

One pump per output fd reads continuously and hands each batch to every sink in turn, awaiting
each send; while a send is pending nothing more is read, so a slow websocket pushes back
through the PTY or pipe to the writer instead of piling up in memory here.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import fcntl
import os
import pty
import signal
import struct
import subprocess
import termios
from collections.abc import Awaitable, Callable, Sequence

from .logbuffer import LogBuffer

READ_BATCH = 64 * 1024
# After the main process exits, how long a quiet fd may stay open (a background child still
# holds it) before we stop reading. PTY data reaches the master asynchronously, so "nothing to
# read right now" just after exit does not mean "nothing more will come".
EXIT_QUIET = 0.05
PR_SET_PDEATHSIG = 1

Sink = Callable[[int, bytes], Awaitable[bool]]  # (channel, data) -> still wanted?


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _child_setup(tty: bool, cgroup_procs: str | None, ignore_interrupts: bool = False) -> Callable[[], None]:
    libc = _libc()

    def setup() -> None:
        if ignore_interrupts:
            # A sandbox's wrapper (unshare/nsenter) shares the terminal's process group until the
            # shell takes one of its own: ^C must not kill it (sandbox.py restores them for the command).
            # (libc's signal(): Python's refuses to run outside the main thread, and kubesim may
            # run on another thread of a test process.)
            libc.signal(signal.SIGINT, ctypes.c_void_p(1))  # SIG_IGN
            libc.signal(signal.SIGQUIT, ctypes.c_void_p(1))
        # Join the container's cgroup before exec, as runc does: from the first instruction on,
        # the process and all it forks are the container's, whatever they do to their session.
        if cgroup_procs is not None:
            with open(cgroup_procs, "w") as f:
                f.write(str(os.getpid()))
        # Popen already called setsid (start_new_session); make the PTY our controlling terminal
        # so ^C / SIGWINCH / job control behave like in a real container.
        if tty:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        # If kubesim dies without cleaning up, do not leave "containers" running.
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

    return setup


def set_winsize(fd: int, width: int, height: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


def session_members(sid: int) -> list[int]:
    """Live (non-zombie) processes of a session, from /proc.

    The session, not the process group: an interactive shell with job control puts every job
    in a process group of its own, but they all stay in the container's session.
    """
    members: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # comm may contain spaces and parentheses: split after the last ')'.
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 3 and int(fields[3]) == sid and fields[0] != b"Z":
            members.append(int(entry))
    return members


class Process:
    """A running command. Output goes to the log buffer (if any) and to every sink."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        tty: bool,
        stdin: bool,
        env: dict[str, str],
        log: LogBuffer | None = None,
        cwd: str = "/",
        size: tuple[int, int] = (80, 24),
        cgroup_procs: str | None = None,
        ignore_interrupts: bool = False,
        gated: bool = False,
    ) -> None:
        self.argv = list(argv)
        self.tty = tty
        self.log = log
        self.exit_code: int | None = None
        self.exited = asyncio.Event()  # the main process has been reaped
        self.finished = asyncio.Event()  # ...and all its output has been delivered
        self._loop = asyncio.get_running_loop()
        self._sinks: list[Sink] = []
        self._stdin_lock = asyncio.Lock()
        self._pumps: list[_Pump] = []
        self._stdin_fd: int | None = None
        self._master: int | None = None
        self._cgroup_procs = cgroup_procs
        self._ignore_interrupts = ignore_interrupts
        # gated: output waits (in the pipe, pushing back) until open_output(), so whoever starts
        # the process asynchronously can attach its sinks before the first byte is delivered.
        self._gate = asyncio.Event()
        if not gated:
            self._gate.set()
        self.last_output = self._loop.time()  # when output was last delivered (an attach waits for quiet)
        self._popen = self._spawn(stdin, env, cwd, size)
        self.pid = self._popen.pid
        self.pgid = self.pid  # start_new_session makes the child its own session and group leader
        self.sid = self.pid
        self._pidfd = os.pidfd_open(self.pid)
        self._loop.add_reader(self._pidfd, self._on_exit)
        self._pump_tasks = [asyncio.ensure_future(p.run()) for p in self._pumps]

    def _spawn(self, stdin: bool, env: dict[str, str], cwd: str, size: tuple[int, int]) -> subprocess.Popen[bytes]:
        if self.tty:
            master, slave = pty.openpty()
            try:
                set_winsize(slave, *size)
                popen = subprocess.Popen(  # noqa: S603
                    self.argv,
                    stdin=slave,
                    stdout=slave,
                    stderr=slave,
                    env=env,
                    cwd=cwd,
                    start_new_session=True,
                    preexec_fn=_child_setup(True, self._cgroup_procs, self._ignore_interrupts),
                    close_fds=True,  # noqa: PLW1509
                )
            except BaseException:
                os.close(master)
                raise
            finally:
                os.close(slave)
            os.set_blocking(master, False)
            self._master = master
            self._stdin_fd = master if stdin else None
            self._pumps.append(_Pump(self, master, 1))
            return popen
        parent_fds: list[int] = []
        child_fds: list[int] = []
        try:
            if stdin:
                in_r, in_w = os.pipe2(os.O_CLOEXEC)
                child_fds.append(in_r)
                parent_fds.append(in_w)
                child_stdin: int = in_r
            else:
                child_stdin = subprocess.DEVNULL
            out_r, out_w = os.pipe2(os.O_CLOEXEC)
            err_r, err_w = os.pipe2(os.O_CLOEXEC)
            parent_fds += [out_r, err_r]
            child_fds += [out_w, err_w]
            popen = subprocess.Popen(  # noqa: S603
                self.argv,
                stdin=child_stdin,
                stdout=out_w,
                stderr=err_w,
                env=env,
                cwd=cwd,
                start_new_session=True,
                preexec_fn=_child_setup(False, self._cgroup_procs, self._ignore_interrupts),
                close_fds=True,  # noqa: PLW1509
            )
        except BaseException:
            for fd in parent_fds:
                os.close(fd)
            raise
        finally:
            for fd in child_fds:
                os.close(fd)
        for fd in parent_fds:
            os.set_blocking(fd, False)
        if stdin:
            self._stdin_fd = in_w
        self._pumps += [_Pump(self, out_r, 1), _Pump(self, err_r, 2)]
        return popen

    # --- sinks -------------------------------------------------------------------------------

    def add_sink(self, sink: Sink) -> None:
        self._sinks.append(sink)

    def remove_sink(self, sink: Sink) -> None:
        if sink in self._sinks:
            self._sinks.remove(sink)

    def open_output(self) -> None:
        self._gate.set()

    async def _deliver(self, channel: int, data: bytes) -> None:
        if not self._gate.is_set():
            await self._gate.wait()
        self.last_output = self._loop.time()
        if self.log is not None:
            self.log.append(data)
        for sink in list(self._sinks):
            if not await sink(channel, data):
                self.remove_sink(sink)

    # --- input -------------------------------------------------------------------------------

    @property
    def has_stdin(self) -> bool:
        return self._stdin_fd is not None

    async def write_stdin(self, data: bytes) -> None:
        async with self._stdin_lock:  # several attachers: keep each message's bytes together
            view = memoryview(data)
            while view and self._stdin_fd is not None:
                fd = self._stdin_fd
                try:
                    view = view[os.write(fd, view) :]
                except BlockingIOError:
                    await self._wait_fd(fd, writable=True)
                except OSError:  # the reader went away (EPIPE, EIO): input is dropped, as with a dead container
                    return

    async def close_stdin(self) -> None:
        """EOF for the process: close the pipe, or type ^D on a terminal (the master must stay open)."""
        if self._stdin_fd is None:
            return
        if self.tty:
            await self.write_stdin(b"\x04")
            return
        async with self._stdin_lock:
            if self._stdin_fd is not None:
                os.close(self._stdin_fd)
                self._stdin_fd = None

    def resize(self, width: int, height: int) -> None:
        # The kernel sends SIGWINCH to the terminal's foreground group when the size changes.
        if self._master is not None and width > 0 and height > 0 and not self.finished.is_set():
            set_winsize(self._master, width, height)

    async def _wait_fd(self, fd: int, *, writable: bool, quiet: float | None = None) -> bool:
        """Wait until fd is ready (or the process exited, for readers). False on timeout."""
        fut: asyncio.Future[None] = self._loop.create_future()

        def ready() -> None:
            if not fut.done():
                fut.set_result(None)

        if writable:
            self._loop.add_writer(fd, ready)
        else:
            self._loop.add_reader(fd, ready)
        try:
            await asyncio.wait_for(fut, quiet) if quiet is not None else await fut
            return True
        except TimeoutError:
            return False
        finally:
            if writable:
                self._loop.remove_writer(fd)
            else:
                self._loop.remove_reader(fd)

    # --- exit and termination ----------------------------------------------------------------

    def _on_exit(self) -> None:
        self._loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        code = self._popen.poll()
        if code is None:  # cannot happen with a readable pidfd, but never block the loop
            code = self._popen.wait()
        # Like containerd: death by signal N is exit code 128+N.
        self.exit_code = 128 - code if code < 0 else code
        self.exited.set()
        for pump in self._pumps:
            pump.wake()
        asyncio.ensure_future(self._finish())

    async def _finish(self) -> None:
        await asyncio.gather(*self._pump_tasks, return_exceptions=True)
        async with self._stdin_lock:
            if self._stdin_fd is not None and self._stdin_fd != self._master:
                os.close(self._stdin_fd)
            self._stdin_fd = None
        for pump in self._pumps:
            os.close(pump.fd)
        self._master = None
        self.finished.set()

    def signal_group(self, sig: int) -> None:
        """Signal the main process group and every job the container's shell started."""
        for pid in [self.pgid, *session_members(self.sid)]:
            try:
                if pid == self.pgid:
                    os.killpg(pid, sig)
                else:
                    os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass

    async def terminate(self, grace: float = 1.0) -> None:
        """SIGTERM the whole group, SIGKILL whatever is left after grace; return when all are gone."""
        self.signal_group(signal.SIGTERM)
        if self.tty:
            self.signal_group(signal.SIGHUP)  # interactive shells ignore SIGTERM but not a hangup
        deadline = self._loop.time() + grace
        # Polling: members that are not our children give us no exit notification.
        while self._loop.time() < deadline and (not self.exited.is_set() or session_members(self.sid)):  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        self.signal_group(signal.SIGKILL)
        await self.exited.wait()
        # Members reparented to init are reaped by it; wait until none is alive.
        for _ in range(100):
            if not session_members(self.sid):
                break
            self.signal_group(signal.SIGKILL)
            await asyncio.sleep(0.01)
        await self.finished.wait()


class _Pump:
    def __init__(self, proc: Process, fd: int, channel: int) -> None:
        self.proc = proc
        self.fd = fd
        self.channel = channel
        self._waiter: asyncio.Future[None] | None = None

    def wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _read_batch(self) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        total = 0
        eof = False
        while total < READ_BATCH:
            try:
                chunk = os.read(self.fd, READ_BATCH - total)
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno != errno.EIO:  # EIO: the PTY's slave side is fully closed
                    raise
                eof = True
                break
            if not chunk:
                eof = True
                break
            chunks.append(chunk)
            total += len(chunk)
        return (chunks[0] if len(chunks) == 1 else b"".join(chunks)), eof

    async def run(self) -> None:
        proc = self.proc
        loop = asyncio.get_running_loop()
        while True:
            data, eof = self._read_batch()
            if data:
                await proc._deliver(self.channel, data)
            if eof:
                return
            if data:
                continue
            if proc.exited.is_set():
                if not await proc._wait_fd(self.fd, writable=False, quiet=EXIT_QUIET):
                    return
                continue
            fut: asyncio.Future[None] = loop.create_future()
            self._waiter = fut

            def ready(f: asyncio.Future[None] = fut) -> None:
                if not f.done():
                    f.set_result(None)

            loop.add_reader(self.fd, ready)
            try:
                await fut
            finally:
                loop.remove_reader(self.fd)
                self._waiter = None
