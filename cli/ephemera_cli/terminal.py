"""Attach this terminal to a running session's shell through the portal's terminal websocket.

Like `kubectl attach -it`: the local terminal goes raw (every key, Ctrl-C included, goes to the
remote shell), its size follows the window (SIGWINCH), Ctrl-P Ctrl-Q detaches and leaves the
shell running for `kubectl ephemera attach`. The protocol (docs/terminal-protocol.md): binary
frames, output bytes written untouched (a UTF-8 character split across two frames arrives
whole, because nothing here decodes it), acked once written so the server's flow control
paces a flood to what this terminal absorbs, reconnect with backoff when the connection drops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sys
import termios
import time
import tty
import uuid
from collections.abc import Iterator
from typing import Any

import aiohttp

from ephemera_cli import protocol
from ephemera_cli.client import Portal
from ephemera_cli.errors import CliError, Exit
from ephemera_cli.output import clean, until

CTRL_P, CTRL_Q = 0x10, 0x11
DETACH_HELP = "Ctrl-P Ctrl-Q"
RECONNECT_GIVE_UP_SECONDS = 120.0  # dropped for this long in a row: say the portal is unreachable
STDIN_EOF_QUIET_SECONDS = 1.0  # piped input: detach once the output has been quiet this long
MAX_EARLY_INPUT = 1024 * 1024  # input kept while not connected (a paste, a piped script)


class DetachKeys:
    """Spots Ctrl-P Ctrl-Q in what is typed, even split across two reads; passes the rest on.

    A Ctrl-P is held back until the next key shows whether it starts the detach sequence, then
    sent along with that key (docker's and kubectl's behaviour).
    """

    def __init__(self) -> None:
        self.holding = False

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """(bytes to send, whether to detach). After a detach the rest of `data` is dropped."""
        if not self.holding and CTRL_P not in data:
            return data, False
        out = bytearray()
        for byte in data:
            if self.holding:
                self.holding = False
                if byte == CTRL_Q:
                    return bytes(out), True
                out.append(CTRL_P)
            if byte == CTRL_P:
                self.holding = True
            else:
                out.append(byte)
        return bytes(out), False


@contextlib.contextmanager
def raw_mode(fd: int) -> Iterator[None]:
    """The local terminal in raw mode for the block, restored however the block ends."""
    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd, termios.TCSANOW)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def window_size(*fds: int) -> tuple[int, int]:
    for fd in fds:
        with contextlib.suppress(OSError):
            size = os.get_terminal_size(fd)
            return size.columns, size.lines
    return 80, 24


def websocket_url(base: str, path: str) -> str:
    scheme, rest = base.split("://", 1)
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest}{path}"


class Attachment:
    """One attach: the reconnect loop around connections, sharing stdin, the detach keys and the
    window size between them. `run()` returns the exit code."""

    def __init__(self, api: Portal, session: dict[str, Any], *, stdin_fd: int = 0, stdout_fd: int = 1) -> None:
        self.api = api
        # The documented path, built from the id as a UUID: never a path or host from an answer,
        # which would decide where the token goes.
        self.session_id = str(uuid.UUID(str(session["id"])))
        self.url = websocket_url(api.config.url, f"/ws/sessions/{self.session_id}/terminal")
        self.stdin_fd, self.stdout_fd = stdin_fd, stdout_fd
        self.tty = os.isatty(stdout_fd)
        self.newline = b"\r\n"  # raw mode (no output processing), and harmless in a pipe
        self.keys = DetachKeys()
        self.detached = asyncio.Event()
        self.detach_exit = Exit.OK
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.outbox: asyncio.Queue[bytes] = asyncio.Queue()
        self.at_line_start = True
        self.unacked = 0
        self.ack_scheduled = False
        self.last_event: dict[str, Any] = {}
        self.last_output = time.monotonic()
        self.resize_timer: asyncio.TimerHandle | None = None
        self.resize_later = False
        self.early_input = b""
        self.connected = False  # a terminal connection has said `connected` at least once

    # --- the local terminal --------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.stdout_fd, view)
            except BlockingIOError:
                time.sleep(0.001)
                continue
            view = view[n:]
        if data:
            self.at_line_start = data.endswith(b"\n")

    def say(self, text: str) -> None:
        """A line of ours, on a line of its own however the shell's output left the cursor."""
        prefix = b"" if self.at_line_start else self.newline
        self.write(prefix + b"[ephemera] " + clean(text).encode("utf-8", "replace") + self.newline)

    def on_stdin(self) -> None:
        try:
            data = os.read(self.stdin_fd, 65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # piped input ended: let the last command's output arrive, then detach
            asyncio.get_running_loop().remove_reader(self.stdin_fd)
            asyncio.get_running_loop().create_task(self._detach_when_quiet())
            return
        data, detach = self.keys.feed(data)
        if data and self.ws is not None and not self.ws.closed:
            for frame in protocol.input_frames(data):
                self.outbox.put_nowait(frame)
        elif data and len(self.early_input) < MAX_EARLY_INPUT:
            # Typed (or piped) before the terminal is connected: sent once it is, as kubectl does.
            self.early_input += data[: MAX_EARLY_INPUT - len(self.early_input)]
        if detach:
            self.detach()

    def detach(self, code: Exit = Exit.OK) -> None:
        self.detach_exit = code
        self.detached.set()
        if self.ws is not None and not self.ws.closed:
            asyncio.get_running_loop().create_task(self.ws.close())

    async def _detach_when_quiet(self) -> None:
        while not self.connected or self.early_input or time.monotonic() - self.last_output < STDIN_EOF_QUIET_SECONDS:
            await asyncio.sleep(0.2)
        self.detach()

    def on_winch(self) -> None:
        # The first change goes out at once (the next key typed may depend on it); dragging a
        # window edge sends a burst of SIGWINCH, which is sent as one size every 50 ms at most.
        if self.resize_timer is not None:
            self.resize_later = True
            return
        self.send_size()
        self.resize_timer = asyncio.get_running_loop().call_later(0.05, self._winch_settled)

    def _winch_settled(self) -> None:
        self.resize_timer = None
        if self.resize_later:
            self.resize_later = False
            self.on_winch()

    def send_size(self) -> None:
        if self.ws is not None and not self.ws.closed:
            self.outbox.put_nowait(protocol.resize(*window_size(self.stdout_fd, self.stdin_fd)))

    # --- flow control --------------------------------------------------------------------------

    def processed(self, count: int) -> None:
        """`count` output bytes are written: ack them in batches, or as soon as nothing more is
        queued (call_soon runs once the receive loop really waits, i.e. it has read everything)."""
        self.unacked += count
        if self.unacked >= protocol.ACK_EVERY:
            self.flush_ack()
        elif not self.ack_scheduled:
            self.ack_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush_ack)

    def flush_ack(self) -> None:
        self.ack_scheduled = False
        if self.unacked:
            self.outbox.put_nowait(protocol.ack(self.unacked))
            self.unacked = 0

    async def _send_loop(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        # One sender keeps input, resizes and acks in the order they were made.
        with contextlib.suppress(ConnectionError, aiohttp.ClientError, RuntimeError):
            while True:
                frame = await self.outbox.get()
                await ws.send_bytes(frame)

    # --- status messages ------------------------------------------------------------------------

    def on_status(self, payload: bytes) -> None:
        try:
            event = json.loads(payload)
        except ValueError:
            return
        if not isinstance(event, dict):
            return
        self.last_event = event
        name, message = str(event.get("event", "")), clean(str(event.get("message", "")))
        if name == "connected":
            self.connected = True
            # The shell is attached now: what was typed (or piped) meanwhile goes to it.
            for frame in protocol.input_frames(self.early_input):
                self.outbox.put_nowait(frame)
            self.early_input = b""
            if event.get("reattached") and self.tty:
                # The next output replays the screen's tail: start from a clear screen, not
                # under a copy of it (the scrollback stays).
                self.write(b"\x1b[H\x1b[2J")
                self.at_line_start = True
            self.say(
                f"Attached to session {self.session_id}; it ends at {until(event.get('expires_at'))}. "
                f"Detach: {DETACH_HELP}."
            )
        elif name in ("extended", "ending_soon"):
            self.say(f"{message or name} (ends at {until(event.get('expires_at'))})")
        elif message or name:
            self.say(message or name)

    # --- connections ---------------------------------------------------------------------------

    async def _connect_once(self) -> int | None:
        """One connection until it closes: the close code (None: dropped or never opened)."""
        assert self.api.http is not None
        self.outbox = asyncio.Queue()
        self.unacked, self.ack_scheduled = 0, False
        try:
            ws = await self.api.http.ws_connect(
                self.url,
                heartbeat=30,
                max_msg_size=4 * 1024 * 1024,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5),
            )
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status == 401:
                raise CliError("the portal refused the token; get a new one and run: kubectl ephemera login URL --token TOKEN",
                               Exit.AUTH) from None
            if exc.status in (403, 404):
                raise CliError(f"the portal refused the terminal connection (HTTP {exc.status}); check the portal URL",
                               Exit.ERROR) from None
            return None
        except (TimeoutError, aiohttp.ClientError, OSError):
            return None
        self.ws = ws
        if self.detached.is_set():  # detached while connecting
            await ws.close()
            return ws.close_code
        sender = asyncio.get_running_loop().create_task(self._send_loop(ws))
        try:
            self.outbox.put_nowait(protocol.resize(*window_size(self.stdout_fd, self.stdin_fd)))
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.BINARY or not msg.data:
                    continue
                kind, payload = msg.data[0], msg.data[1:]
                if kind == protocol.OUTPUT:
                    self.last_output = time.monotonic()
                    try:
                        self.write(payload)
                    except OSError:  # our stdout is gone (closed pipe, hung-up terminal)
                        self.detach()
                        break
                    self.processed(len(payload))
                elif kind == protocol.STATUS:
                    self.on_status(payload)
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            if not ws.closed:
                await ws.close()
            self.ws = None
        return ws.close_code

    async def _ended(self) -> Exit:
        """Why the session is gone, from the portal (the socket's message said it already)."""
        try:
            session = await self.api.get(f"/api/v1/sessions/{self.session_id}")
        except CliError:
            return Exit.EXPIRED if self.last_event.get("event") == "expired" else Exit.OK
        reason = session.get("end_reason") or ""
        if session.get("status") == "failed":
            return Exit.ERROR
        if reason == "expired" or self.last_event.get("event") == "expired":
            return Exit.EXPIRED
        if reason in ("revoked", "admin"):
            return Exit.REVOKED
        if reason == "pod_gone":
            return Exit.ERROR
        return Exit.OK

    async def _outcome(self, code: int) -> Exit:
        message = clean(str(self.last_event.get("message", "")))
        if code == protocol.CLOSE_GONE:
            return await self._ended()
        if code == protocol.CLOSE_FORBIDDEN and self.last_event.get("event") == "revoked":
            return Exit.REVOKED
        if code == protocol.CLOSE_UNAUTHENTICATED:
            raise CliError("the portal refused the token; get a new one and run: kubectl ephemera login URL --token TOKEN",
                           Exit.AUTH)
        if code == protocol.CLOSE_REPLACED:
            raise CliError(f"this terminal was opened elsewhere; take it back with: kubectl ephemera attach {self.session_id}")
        if code in (protocol.CLOSE_PROTOCOL, protocol.CLOSE_NOT_READING):
            raise CliError(f"the portal closed the terminal for a protocol error ({code}: {message}); please report it")
        raise CliError(message or f"the portal closed the terminal ({code})")

    async def run(self) -> Exit:
        loop = asyncio.get_running_loop()
        with raw_mode(self.stdin_fd):
            loop.add_reader(self.stdin_fd, self.on_stdin)
            loop.add_signal_handler(signal.SIGWINCH, self.on_winch)
            for sig in (signal.SIGTERM, signal.SIGHUP):
                # Killed or hung up: leave the shell running and the local terminal restored.
                loop.add_signal_handler(sig, self.detach, Exit.INTERRUPTED)
            try:
                return await self._loop()
            finally:
                loop.remove_reader(self.stdin_fd)
                for sig in (signal.SIGWINCH, signal.SIGTERM, signal.SIGHUP):
                    loop.remove_signal_handler(sig)

    async def _loop(self) -> Exit:
        backoff, down_since = 1.0, time.monotonic()
        while True:
            self.last_event = {}
            code = await self._connect_once()
            if self.detached.is_set():
                if self.detach_exit == Exit.OK:
                    self.say(f"Detached; the shell keeps running. Back with: kubectl ephemera attach {self.session_id}")
                return self.detach_exit
            if code in protocol.FINAL_CLOSE_CODES:
                return await self._outcome(int(code or 0))
            # Dropped (network, portal restart, the cluster stream cut: 4502): the shell lives on.
            if self.last_event or code is not None:  # this one did get through: a fresh start
                backoff, down_since = 1.0, time.monotonic()
            if time.monotonic() - down_since > RECONNECT_GIVE_UP_SECONDS:
                raise CliError(
                    f"lost the terminal for over {int(RECONNECT_GIVE_UP_SECONDS)}s; check the portal, then: "
                    f"kubectl ephemera attach {self.session_id}",
                    Exit.UNREACHABLE,
                )
            wait = backoff * (0.8 + 0.4 * random.random())  # jitter: not every client at once
            self.say(f"Connection lost; reconnecting in {wait:.0f}s ({DETACH_HELP} gives up).")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.detached.wait(), wait)
            backoff = min(backoff * 2, 15.0)
            if self.detached.is_set():
                self.say(f"Detached. Back with: kubectl ephemera attach {self.session_id}")
                return self.detach_exit


async def attach(api: Portal, session: dict[str, Any]) -> Exit:
    if not sys.stdin.isatty():
        # Piped input works (scripts), but the keys can't detach a pipe: it's said once.
        print("kubectl-ephemera: stdin is not a terminal; input is sent as is, detach when it ends", file=sys.stderr)
    return await Attachment(api, session).run()
