"""One session's recorder in this process: cheap appends on the terminal's hot path, batches out.

The terminal calls output()/input()/resize()/marker() from the event loop; nothing here
touches the database, and output is kept as the bytes it was (no decoding, no copy beyond the
list entry): the event loop's share of recording is an append (sessions/recording/frames.py
says how it is stored). `take()` hands the buffered events to the flusher (sessions.recording
.live), which writes them in a thread; a failed write is put back and retried, so an outage
of the database delays the recording instead of losing it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from sessions.bridge.registry import ScreenTail
from sessions.recording.cast import LineTracker, utf8_decoder
from sessions.recording.frames import Event

WATCH_TAIL = 64 * 1024  # most output a watcher is sent per tick; a flood is cut to its tail


@dataclass
class Batch:
    events: list[Event] = field(default_factory=list)  # (unix time, code, bytes or text)
    commands: list[tuple[float, str]] = field(default_factory=list)
    size: tuple[int, int] | None = None  # the first size seen, for the header

    def __bool__(self) -> bool:
        return bool(self.events or self.commands)


class Recorder:
    def __init__(self, session_id: str, *, record_input: bool) -> None:
        self.session_id = session_id
        self.record_input = record_input
        self.connections = 0
        self._lock = threading.Lock()
        self._batch = Batch()
        self._first_size: tuple[int, int] | None = None
        self._in = utf8_decoder()  # typed input is decoded only to follow command lines
        self._lines = LineTracker()
        self.watch = ScreenTail(WATCH_TAIL)  # output not yet sent to watchers
        # Output bytes taken in but not yet written (buffered + in the write in flight): what
        # the terminal's pump waits on (live.backlogged), so a flood is held back in the pty,
        # not in this process, when the database is slower than the shell.
        self.backlog = 0
        self._in_flight = 0
    def output(self, data: bytes) -> None:
        if not data:
            return
        with self._lock:
            self._batch.events.append((time.time(), "o", data))
            self.watch.append(data)
            self.backlog += len(data)

    def input(self, data: bytes) -> None:
        if not self.record_input:
            return
        if not data:
            return
        now = time.time()
        commands = self._lines.feed(self._in.decode(data))
        with self._lock:
            self._batch.events.append((now, "i", data))
            self._batch.commands.extend((now, c) for c in commands)

    def resize(self, cols: int, rows: int) -> None:
        with self._lock:
            if self._first_size is None:
                self._first_size = self._batch.size = (cols, rows)
            self._batch.events.append((time.time(), "r", f"{cols}x{rows}"))

    def marker(self, label: str) -> None:
        with self._lock:
            self._batch.events.append((time.time(), "m", label))

    def take(self) -> Batch:
        with self._lock:
            batch, self._batch = self._batch, Batch()
            self._in_flight = self.backlog
        return batch

    def written(self) -> None:
        """The batch from take() is stored: its bytes no longer count as backlog."""
        with self._lock:
            self.backlog -= self._in_flight
            self._in_flight = 0

    def put_back(self, batch: Batch) -> None:
        """A write failed: its events go before anything buffered since (and still count)."""
        with self._lock:
            self._in_flight = 0
            self._batch.events[:0] = batch.events
            self._batch.commands[:0] = batch.commands
            self._batch.size = self._batch.size or batch.size

    def take_watch(self) -> bytes:
        with self._lock:
            if not len(self.watch):
                return b""
            data = self.watch.snapshot()
            self.watch = ScreenTail(WATCH_TAIL)
        return data
