"""Recorders of the sessions whose terminals are open in this process, fed by the bridge's hooks.

Two loops per recorder, on the event loop of the terminal that opened it. Both sleep until
something was recorded, so an idle terminal costs no wake-ups (1,000 idle terminals polling
every 0.1 and 0.5 s were 12,000 wake-ups a second):
- FLUSH_SECONDS after the first event not yet written, the buffered events are written as
  one chunk, in a worker thread (the event loop and the output path never wait on the
  database), so a killed portal loses at most the last FLUSH_SECONDS plus the write in
  flight: under a second;
- WATCH_SECONDS after new output, it is sent to read-only watchers through the channel layer
  (coalesced; the engineer's own output path stays in-process).
The last terminal of a session to disconnect flushes what is left.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
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


@dataclass(eq=False)
class _Live:
    """A recorder open in this process, and what its loops and the pump wait on."""

    recorder: Recorder
    flush_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    pending: asyncio.Event = field(default_factory=asyncio.Event)  # recorded, not yet written
    watched: asyncio.Event = field(default_factory=asyncio.Event)  # output not yet sent to watchers
    wanted: asyncio.Event = field(default_factory=asyncio.Event)  # the backlog asks for an early flush
    progress: asyncio.Event = field(default_factory=asyncio.Event)  # a write ended: pumps on hold look again
    tasks: list[asyncio.Task] = field(default_factory=list)


_live: dict[str, _Live] = {}


def watch_group(session_id: str) -> str:
    return f"watch.{session_id}"


def recorder(session_id: str) -> Recorder | None:
    return live.recorder if (live := _live.get(session_id)) is not None else None


def _on_connect(session_id: str, username: str) -> None:
    live = _live.get(session_id)
    if live is None:
        live = _live[session_id] = _Live(Recorder(session_id, record_input=settings.EPHEMERA_RECORD_INPUT))
    if not live.tasks:
        live.tasks = [asyncio.create_task(_flush_loop(live)), asyncio.create_task(_watch_loop(live))]
    live.recorder.connections += 1
    live.recorder.marker(f"terminal attached by {username}")
    live.pending.set()


def _on_output(session_id: str, data: bytes) -> None:
    if (live := _live.get(session_id)) is not None:
        live.recorder.output(data)
        live.pending.set()
        live.watched.set()
        if live.recorder.backlog >= FLUSH_EARLY_BYTES:
            live.wanted.set()


def backlogged(session_id: str) -> bool:
    """Should the terminal's pump wait before reading more output (the recording is behind)?"""
    live = _live.get(session_id)
    return live is not None and live.recorder.backlog >= BACKLOG_LIMIT


def hold(session_id: str) -> Awaitable[None] | None:
    """For the pump: None if the recording keeps up, else something to await until it does."""
    return _caught_up(session_id) if backlogged(session_id) else None


async def _caught_up(session_id: str) -> None:
    while backlogged(session_id) and (live := _live.get(session_id)) is not None:
        live.progress.clear()
        live.wanted.set()
        await live.progress.wait()


def _on_input(session_id: str, data: bytes) -> None:
    if (live := _live.get(session_id)) is not None:
        live.recorder.input(data)
        live.pending.set()


def _on_resize(session_id: str, size: tuple[int, int]) -> None:
    if (live := _live.get(session_id)) is not None:
        live.recorder.resize(*size)
        live.pending.set()


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
    live = _live.get(session_id)
    if live is None:
        return
    from sessions.recording.services import recording_append

    rec = live.recorder
    async with live.flush_lock:
        batch = rec.take()
        if not batch:
            rec.written()
            return
        try:
            chunk = await _write(recording_append, session_id=session_id, batch=batch, records_input=rec.record_input)
        except Exception:
            metrics.RECORDING_FLUSH_FAILURES.inc()
            rec.put_back(batch)
            live.pending.set()  # still to write: the flush loop tries again
            raise
        else:
            rec.written()
        finally:
            live.progress.set()
        metrics.recording_written(batch, chunk)


async def disconnected(session_id: str) -> None:
    """A terminal of the session closed: flush; the last one out stops the loops."""
    live = _live.get(session_id)
    if live is None:
        return
    rec = live.recorder
    rec.connections -= 1
    if rec.connections <= 0 and _live.get(session_id) is live:
        async with live.flush_lock:  # let a write in flight finish, then stop the loops
            tasks, live.tasks = live.tasks, []
            for task in tasks:
                task.cancel()
    try:
        await flush(session_id)
    except Exception:
        log.exception("recording %s: final flush failed", session_id)
    if rec.connections <= 0 and _live.get(session_id) is live:
        del _live[session_id]
        live.progress.set()


async def _flush_loop(live: _Live) -> None:
    while True:
        await live.pending.wait()
        try:  # FLUSH_SECONDS after the first unwritten event, or at once when the backlog asks
            await asyncio.wait_for(live.wanted.wait(), FLUSH_SECONDS)
        except TimeoutError:
            pass
        live.wanted.clear()
        live.pending.clear()  # before the take(): anything recorded from here on sets it again
        try:
            await flush(live.recorder.session_id)
        except asyncio.CancelledError:
            raise
        except Exception:  # kept in memory (pending again) and retried next round
            log.exception("recording %s: flush failed, will retry", live.recorder.session_id)


async def _watch_loop(live: _Live) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    rec = live.recorder
    group = watch_group(rec.session_id)
    while True:
        await live.watched.wait()
        await asyncio.sleep(WATCH_SECONDS)  # coalesce: watchers get at most ten sends a second
        live.watched.clear()
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
