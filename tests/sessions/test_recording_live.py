"""The live recorder's loops: they write what was recorded on time, and sleep while nothing is."""

from __future__ import annotations

import asyncio
from typing import Any

from django.utils import timezone

from sessions.models import DebugSession
from sessions.recording import live
from sessions.recording.models import RecordingChunk


def test_an_idle_terminal_wakes_neither_loop_and_output_is_written_within_the_flush_delay(
    transactional_db: Any, alice: Any, make_request: Any, monkeypatch: Any
) -> None:
    req = make_request(alice, status="approved")
    session = DebugSession.objects.create(request=req, status="running", created_at=timezone.now(),
                                          namespace="default", pod="p", container_name="debugger-1")
    sid = str(session.pk)
    flushes: list[float] = []
    watch_takes: list[float] = []
    real_flush = live.flush

    async def counting_flush(session_id: str) -> None:
        flushes.append(asyncio.get_running_loop().time())
        await real_flush(session_id)

    monkeypatch.setattr(live, "flush", counting_flush)

    async def scenario() -> tuple[int, int, int, float]:
        live._on_connect(sid, "alice")
        rec = live.recorder(sid)
        assert rec is not None
        real_take_watch = rec.take_watch

        def counting_take_watch() -> bytes:
            watch_takes.append(1)
            return real_take_watch()

        rec.take_watch = counting_take_watch  # type: ignore[method-assign]
        await asyncio.sleep(live.FLUSH_SECONDS + 0.4)
        after_connect = len(flushes)  # the "attached" marker, written
        await asyncio.sleep(4 * live.FLUSH_SECONDS)  # idle: a polling loop would flush 4 more times
        idle_flushes, idle_takes = len(flushes) - after_connect, len(watch_takes)
        started = asyncio.get_running_loop().time()
        live._on_output(sid, b"output after a quiet spell\r\n")
        while not await asyncio.to_thread(
            lambda: RecordingChunk.objects.filter(session_id=sid).count() >= 2
        ):
            assert asyncio.get_running_loop().time() - started < 5, "the output was never written"
            await asyncio.sleep(0.05)
        written_after = asyncio.get_running_loop().time() - started
        await live.disconnected(sid)
        return after_connect, idle_flushes, idle_takes, written_after

    after_connect, idle_flushes, idle_takes, written_after = asyncio.run(scenario())
    live.close_writer_connection()
    assert after_connect == 1
    assert idle_flushes == 0 and idle_takes == 0
    assert written_after < live.FLUSH_SECONDS + 0.5  # at most the flush delay and the write
    assert len(watch_takes) == 1  # the output woke the watchers' loop once
    assert sid not in live._live
