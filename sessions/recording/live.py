"""Recorders of the sessions whose terminals are open in this process, fed by the bridge's hooks.

Two loops per recorder, on the event loop of the terminal that opened it:
- every FLUSH_SECONDS the buffered events are written as one chunk, in a worker thread (the
  event loop and the output path never wait on the database), so a killed portal loses at
  most the last FLUSH_SECONDS plus the write in flight: under a second;
- every WATCH_SECONDS new output is sent to read-only watchers through the channel layer
  (coalesced; the engineer's own output path stays in-process).
The last terminal of a session to disconnect flushes what is left.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from channels.layers import get_channel_layer
from django.conf import settings

from portal import metrics
from sessions.bridge import registry
from sessions.recording.recorder import Recorder
from sessions.recording.writer import Writer

log = logging.getLogger(__name__)
T = TypeVar("T")

FLUSH_SECONDS = 0.5
WATCH_SECONDS = 0.1
# Past this much unwritten output the flusher writes at once instead of at its next tick, and
# past BACKLOG_LIMIT the terminal's pump stops reading the cluster stream until it is written.
# BACKLOG_LIMIT bounds what a session's recorder holds; an early flush at half of it lets the
# pump read on while a write is in flight (the pump in process, SQLite, 1 MiB limit: 256 KiB
# flushes 96.9 MB/s, 512 KiB 101 MB/s; the write's fixed cost is a transaction and its commit).
FLUSH_EARLY_BYTES = 512 * 1024
BACKLOG_LIMIT = 1024 * 1024

_recorders: dict[str, Recorder] = {}
_tasks: dict[str, list[asyncio.Task]] = {}
_flush_locks: dict[str, asyncio.Lock] = {}
_wanted: dict[str, asyncio.Event] = {}  # set when a recorder's backlog asks for an early flush
_progress: dict[str, asyncio.Event] = {}  # set when a write ends (stored or failed): pumps on hold look again


def watch_group(session_id: str) -> str:
    return f"watch.{session_id}"


def recorder(session_id: str) -> Recorder | None:
    return _recorders.get(session_id)


def _on_connect(session_id: str, username: str) -> None:
    rec = _recorders.get(session_id)
    if rec is None:
        rec = _recorders[session_id] = Recorder(session_id, record_input=settings.EPHEMERA_RECORD_INPUT)
        _flush_locks[session_id] = asyncio.Lock()
        _wanted[session_id] = asyncio.Event()
        _progress[session_id] = asyncio.Event()
    if session_id not in _tasks:
        _tasks[session_id] = [asyncio.create_task(_flush_loop(rec)), asyncio.create_task(_watch_loop(rec))]
    rec.connections += 1
    rec.marker(f"terminal attached by {username}")


def _on_output(session_id: str, data: bytes) -> None:
    if (rec := _recorders.get(session_id)) is not None:
        rec.output(data)
        if rec.backlog >= FLUSH_EARLY_BYTES and (wanted := _wanted.get(session_id)) is not None:
            wanted.set()


def backlogged(session_id: str) -> bool:
    """Should the terminal's pump wait before reading more output (the recording is behind)?"""
    rec = _recorders.get(session_id)
    return rec is not None and rec.backlog >= BACKLOG_LIMIT


def hold(session_id: str) -> Awaitable[None] | None:
    """For the pump: None if the recording keeps up, else something to await until it does."""
    return _caught_up(session_id) if backlogged(session_id) else None


async def _caught_up(session_id: str) -> None:
    while backlogged(session_id) and (progress := _progress.get(session_id)) is not None:
        progress.clear()
        if (wanted := _wanted.get(session_id)) is not None:
            wanted.set()
        await progress.wait()


def _on_input(session_id: str, data: bytes) -> None:
    if (rec := _recorders.get(session_id)) is not None:
        rec.input(data)


def _on_resize(session_id: str, size: tuple[int, int]) -> None:
    if (rec := _recorders.get(session_id)) is not None:
        rec.resize(*size)


def install() -> None:
    """Plug into the terminal bridge (once, from the app's ready())."""
    for hooks, hook in (
        (registry.on_connect, _on_connect),
        (registry.on_output, _on_output),
        (registry.on_input, _on_input),
        (registry.on_resize, _on_resize),
    ):
        if hook not in hooks:
            hooks.append(hook)  # type: ignore[arg-type]


# The recording's own writer thread (sessions/recording/writer.py): all sessions' flushes.
_writer = Writer()


async def _write(fn: Callable[..., T], **kwargs: Any) -> T:
    return await asyncio.wrap_future(_writer.submit(fn, **kwargs))


def close_writer_connection() -> None:
    """Close the writer thread's database connection (waits for it): before a test database goes."""
    _writer.close_connection().result(timeout=30)


async def flush(session_id: str) -> None:
    """Write what the session's recorder holds now (one flush at a time per session)."""
    rec = _recorders.get(session_id)
    if rec is None:
        return
    from sessions.recording.services import recording_append

    async with _flush_locks[session_id]:
        batch = rec.take()
        if not batch:
            rec.written()
            return
        try:
            chunk = await _write(recording_append, session_id=session_id, batch=batch, records_input=rec.record_input)
        except Exception:
            metrics.RECORDING_FLUSH_FAILURES.inc()
            rec.put_back(batch)
            raise
        else:
            rec.written()
        finally:
            if (progress := _progress.get(session_id)) is not None:
                progress.set()
        metrics.recording_written(batch, chunk)


async def disconnected(session_id: str) -> None:
    """A terminal of the session closed: flush; the last one out stops the loops."""
    rec = _recorders.get(session_id)
    if rec is None:
        return
    rec.connections -= 1
    if rec.connections <= 0 and _recorders.get(session_id) is rec:
        async with _flush_locks[session_id]:  # let a write in flight finish, then stop the loops
            for task in _tasks.pop(session_id, []):
                task.cancel()
    try:
        await flush(session_id)
    except Exception:
        log.exception("recording %s: final flush failed", session_id)
    if rec.connections <= 0 and _recorders.get(session_id) is rec:
        del _recorders[session_id]
        _flush_locks.pop(session_id, None)
        _wanted.pop(session_id, None)
        if (progress := _progress.pop(session_id, None)) is not None:
            progress.set()


async def _flush_loop(rec: Recorder) -> None:
    wanted = _wanted[rec.session_id]
    while True:
        try:
            await asyncio.wait_for(wanted.wait(), FLUSH_SECONDS)
        except TimeoutError:
            pass
        wanted.clear()
        try:
            await flush(rec.session_id)
        except asyncio.CancelledError:
            raise
        except Exception:  # kept in memory and retried next round
            log.exception("recording %s: flush failed, will retry", rec.session_id)


async def _watch_loop(rec: Recorder) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    group = watch_group(rec.session_id)
    while True:
        await asyncio.sleep(WATCH_SECONDS)
        data = rec.take_watch()
        if data:
            try:
                await layer.group_send(group, {"type": "watch.output", "data": data})
            except asyncio.CancelledError:
                raise
            except Exception:  # watchers miss a bit of output; the engineer's terminal is untouched
                log.exception("recording %s: sending to watchers failed", rec.session_id)


def notice() -> str:
    """What the terminal's banner says is recorded (the engineer sees it on every connect)."""
    what = "output, typed input and window size" if settings.EPHEMERA_RECORD_INPUT else "output and window size (not typed input)"
    return f"This session is recorded: {what}."
