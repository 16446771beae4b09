"""The recordings' writer thread: every session's flushes, one at a time, in order of arrival.

Not Channels' shared database thread: every websocket message of every consumer first runs a
hop on that one (aclose_old_connections), so keystrokes and ACKs queued behind recording writes
and typing lagged by seconds while other sessions streamed.

The thread keeps its database connection while there is work and closes it after IDLE_SECONDS
without any. Opening one per write cost more than the write on PostgreSQL (the pump with
recording on: 52 MB/s reconnecting for every flush, 87 MB/s keeping the connection; bench
notes in docs/performance.md); a connection kept forever by an idle thread would outlive a
database restart and keep a test database from being dropped.

Writes are not batched across sessions: tried, with each flush in a savepoint of one shared
transaction, the sessions' pumps then all woke at the same commit and their output queued
ahead of an idle session's keystroke echo (the typist's p99 at 20 flooded sessions went from
10-13 ms to 55-83 ms), against +16% combined throughput.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from django.db import connection

IDLE_SECONDS = 1.0


@dataclass
class _Job:
    fn: Callable[..., Any] | None  # None: close this thread's database connection
    kwargs: dict[str, Any]
    future: Future = field(default_factory=Future)


class Writer:
    def __init__(self, name: str = "recording-writer") -> None:
        self._name = name
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()

    def submit(self, fn: Callable[..., Any], **kwargs: Any) -> Future:
        """Run fn(**kwargs) in the writer thread."""
        return self._put(_Job(fn, kwargs))

    def close_connection(self) -> Future:
        """Close the writer thread's database connection (before a test database is dropped)."""
        return self._put(_Job(None, {}))

    def _put(self, job: _Job) -> Future:
        self._jobs.put(job)
        with self._start:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
        return job.future

    def _run(self) -> None:
        while True:
            try:
                job = self._jobs.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                connection.close()
                continue
            if job.fn is None:
                connection.close()
                job.future.set_result(None)
            elif job.future.set_running_or_notify_cancel():
                try:
                    job.future.set_result(job.fn(**job.kwargs))
                except BaseException as exc:  # handed to the flush, which keeps its batch and retries
                    connection.close()  # a connection that failed is not reused
                    job.future.set_exception(exc)
