"""Per-session terminal state kept in this process: the screen tail and the live connection.

A reconnect (same process) replays the tail so the screen comes back, then the resize trick
makes full-screen programs redraw. The tail is bounded, so memory per idle session stays
small. `on_output` (and `on_input`, `on_resize`, `on_connect`) hooks are where the session
recorder (sessions.recording) plugs in.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

TAIL_BYTES = 64 * 1024
OutputHook = Callable[[str, bytes], None]

# Hooks called with (session_id, raw output bytes) for every chunk sent to the browser.
on_output: list[OutputHook] = []
# (session_id, bytes typed), (session_id, (cols, rows)), (session_id, username) on each attach.
on_input: list[Callable[[str, bytes], None]] = []
on_resize: list[Callable[[str, tuple[int, int]], None]] = []
on_connect: list[Callable[[str, str], None]] = []


def _call(hooks: list[Callable[[str, Any], None]], session_id: str, value: Any) -> None:
    for hook in hooks:
        try:
            hook(session_id, value)
        except Exception:  # a broken recorder must not kill the terminal
            log.exception("terminal hook %r failed for session %s", hook, session_id)


class ScreenTail:
    """The last TAIL_BYTES of a session's output, cut where a replay starts cleanly."""

    def __init__(self, limit: int = TAIL_BYTES) -> None:
        self.limit = limit
        self._buf = bytearray()

    def append(self, data: bytes) -> None:
        self._buf += data
        if len(self._buf) > self.limit + self.limit // 4:  # trim in batches: cheap on a busy stream
            self._trim()

    def snapshot(self) -> bytes:
        self._trim()
        return bytes(self._buf)

    def __len__(self) -> int:
        return min(len(self._buf), self.limit)

    def _trim(self) -> None:
        excess = len(self._buf) - self.limit
        if excess <= 0:
            return
        # Start the replay at a line start if one is near, else at a UTF-8 lead byte, so it
        # does not open with half a character or half an escape sequence.
        cut = self._buf.find(b"\n", excess, excess + 4096)
        if cut != -1:
            cut += 1
        else:
            cut = excess
            while cut < len(self._buf) and (self._buf[cut] & 0xC0) == 0x80:
                cut += 1
        del self._buf[:cut]


class SessionTerminal:
    """What this process knows about one session's terminal."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.tail = ScreenTail()
        self.owner: Any = None  # the consumer currently attached, if any

    def record_output(self, data: bytes) -> None:
        self.tail.append(data)
        _call(on_output, self.session_id, data)  # type: ignore[arg-type]

    def record_input(self, data: bytes) -> None:
        _call(on_input, self.session_id, data)  # type: ignore[arg-type]

    def record_resize(self, cols: int, rows: int) -> None:
        _call(on_resize, self.session_id, (cols, rows))  # type: ignore[arg-type]

    def record_connect(self, username: str) -> None:
        _call(on_connect, self.session_id, username)  # type: ignore[arg-type]


_lock = threading.Lock()
_terminals: dict[str, SessionTerminal] = {}


def terminal_for(session_id: str) -> SessionTerminal:
    with _lock:
        term = _terminals.get(session_id)
        if term is None:
            term = _terminals[session_id] = SessionTerminal(session_id)
        return term


def peek(session_id: str) -> SessionTerminal | None:
    with _lock:
        return _terminals.get(session_id)


def forget(session_id: str) -> None:
    """Drop a finished session's state (it won't be reconnected)."""
    with _lock:
        _terminals.pop(session_id, None)
