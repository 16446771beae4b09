"""Bytes through the terminal: browser protocol <-> consumer <-> kubesim's real attach stream."""

from __future__ import annotations

import asyncio
import time

import pytest

from sessions.bridge import protocol, registry
from sessions.bridge.pump import HIGH_WATERMARK
from tests.sessions.conftest import open_term

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


async def _ready(term) -> None:  # type: ignore[no-untyped-def]
    await term.until(lambda: any(s["event"] == "connected" for s in term.statuses))
    await term.resize(120, 40)


async def test_input_and_output_round_trip(term_session, term_users):
    term, _ = await open_term(term_session, user=term_users.alice)
    try:
        await _ready(term)
        out = await term.run("echo hello-$((6*7))", "rt")
        assert b"hello-42" in out
    finally:
        await term.close()


async def test_resize_reaches_the_shell(term_session, term_users):
    term, _ = await open_term(term_session, user=term_users.alice)
    try:
        await _ready(term)
        assert b"40 120" in await term.run("stty size", "sz1")
        await term.resize(97, 31)
        assert b"31 97" in await term.run("stty size", "sz2")
    finally:
        await term.close()


async def test_split_multibyte_characters_arrive_byte_exact(term_session, term_users):
    term, _ = await open_term(term_session, user=term_users.alice)
    try:
        await _ready(term)
        # 3-byte and 4-byte characters, far more than one read: chunk edges fall mid-character.
        out = await term.run("i=0; while [ $i -lt 3000 ]; do printf 'é€😀'; i=$((i+1)); done", "utf", timeout=30)
        assert out.replace(b"\r\n", b"").strip() == "é€😀".encode() * 3000
    finally:
        await term.close()


async def test_flow_control_bounds_the_server_and_ctrl_c_comes_back(term_session, term_users):
    term, _ = await open_term(term_session, user=term_users.alice)
    try:
        await _ready(term)
        await term.run("PS1='flow$ '", "ps")
        term.auto_ack = False
        acked = term.received  # everything before this was acked as it came
        await term.type("yes\r")
        # Without acks the server sends at most the high watermark (+ one frame), then stops reading.
        await term.until(lambda: term.received >= HIGH_WATERMARK // 2, timeout=20)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            try:
                await term.next(timeout=0.2)
            except TimeoutError:
                pass
        owner = registry.peek(str(term_session.pk)).owner
        assert owner.pump.paused, "the pump must stop reading upstream"
        assert owner.pump.buffered <= HIGH_WATERMARK + 256 * 1024
        assert term.received <= HIGH_WATERMARK + 256 * 1024
        stalled_at = term.received
        await asyncio.sleep(1)
        try:
            await term.next(timeout=0.2)
        except TimeoutError:
            pass
        assert term.received == stalled_at, "nothing more may arrive until the client acks"

        # Ack what we have (only what was not acked yet: more is a protocol error), press Ctrl-C:
        # the prompt must come back promptly.
        await term.comm.send_to(bytes_data=protocol.ack(term.received - acked))
        term.auto_ack = True
        mark = len(term.out)
        await term.type(b"\x03")
        started = time.monotonic()
        await term.expect_output(b"flow$ ", timeout=10, start=mark)
        assert time.monotonic() - started < 5
        assert b"still-here" in await term.run("echo still-$(echo here)", "after")
    finally:
        await term.close()


async def test_reconnect_restores_the_screen_and_keeps_the_shell(term_session, term_users):
    term, _ = await open_term(term_session, user=term_users.alice)
    try:
        await _ready(term)
        await term.run("export EPH_MARK=kept-$((1+1)); echo screen-line-$((3*3))", "set")
    finally:
        await term.close()

    again, _ = await open_term(term_session, user=term_users.alice)
    try:
        await again.until(lambda: any(s["event"] == "connected" for s in again.statuses))
        connected = next(s for s in again.statuses if s["event"] == "connected")
        assert connected["reattached"] is True
        await again.expect_output(b"screen-line-9", timeout=5)  # the replayed tail
        await again.resize(120, 40)
        assert b"kept-2" in await again.run("echo $EPH_MARK", "get")
    finally:
        await again.close()


async def test_a_second_window_takes_over_the_terminal(term_session, term_users):
    first, _ = await open_term(term_session, user=term_users.alice)
    second = None
    try:
        await _ready(first)
        second, _ = await open_term(term_session, user=term_users.alice)
        assert await first.until_closed(10) == protocol.CLOSE_REPLACED
        await _ready(second)
        assert b"ok-1" in await second.run("echo ok-$((0+1))", "t")
    finally:
        await first.close()
        if second:
            await second.close()


async def test_a_protocol_violation_closes_the_socket(term_session, term_users):
    term, _ = await open_term(term_session, user=term_users.alice)
    try:
        await _ready(term)
        await term.comm.send_to(bytes_data=bytes([0x42]) + b"junk")
        assert await term.until_closed(10) == protocol.CLOSE_PROTOCOL
    finally:
        await term.close()


async def test_a_reconnect_to_a_process_without_the_screen_restores_it_from_the_recording(term_session, term_users):
    from sessions.bridge import registry

    term, _ = await open_term(term_session, user=term_users.alice)
    try:
        await _ready(term)
        await term.run("export EPH_MARK=kept-$((2+2)); echo durable-line-$((5*5))", "set")
    finally:
        await term.close()  # the last terminal to close writes the rest of the recording

    # As if the portal had restarted (or the reconnect landed on another replica).
    registry.forget(str(term_session.pk))

    again, _ = await open_term(term_session, user=term_users.alice)
    try:
        await again.until(lambda: any(s["event"] == "connected" for s in again.statuses))
        connected = next(s for s in again.statuses if s["event"] == "connected")
        assert connected["reattached"] is True
        await again.expect_output(b"durable-line-25", timeout=5)  # replayed from the database
        await again.resize(120, 40)
        assert b"kept-4" in await again.run("echo $EPH_MARK", "get")
    finally:
        await again.close()


async def test_typing_never_waits_on_the_shared_database_thread(term_session, term_users):
    """Channels runs every consumer's database work on one shared thread and made every incoming
    message hop through it first; keystrokes queued behind recording writes and other sessions'
    queries (typing lagged by seconds while others streamed). Keep that thread busy for 3 s:
    a keystroke must still echo at once."""
    from channels.db import database_sync_to_async

    term, _ = await open_term(term_session, user=term_users.alice)
    try:
        await _ready(term)
        busy = asyncio.create_task(database_sync_to_async(time.sleep)(3))
        await asyncio.sleep(0.1)  # the shared thread is asleep now
        start = len(term.out)
        started = time.monotonic()
        await term.type("echo quick-$((6*7))\r")
        await term.expect_output(b"quick-42", timeout=10, start=start)
        took = time.monotonic() - started
        assert not busy.done(), "the database thread should still be busy"
        assert took < 1.0, f"the echo took {took:.2f}s: input waited on the database thread"
        await busy
    finally:
        await term.close()
