"""The bridge's pieces on their own: wire format, screen tail, and the pump's flow control."""

from __future__ import annotations

import asyncio

import pytest

from portal.kube.attach import STDOUT, StreamEvent
from sessions.bridge import protocol, registry
from sessions.bridge.pump import Pump


def test_resize_and_ack_round_trip():
    assert protocol.parse_resize(protocol.resize(132, 43)[1:]) == (132, 43)
    assert protocol.parse_ack(protocol.ack(70000)[1:]) == 70000


@pytest.mark.parametrize("payload", [b"", b"\x00\x50", b"\x00\x00\x00\x10", b"\xff\xff\x00\x10"])
def test_it_rejects_bad_resizes(payload):
    with pytest.raises(protocol.ProtocolError):
        protocol.parse_resize(payload)


def test_the_tail_is_bounded_and_starts_on_a_line():
    tail = registry.ScreenTail(limit=1000)
    for i in range(500):
        tail.append(f"line {i} ééé\r\n".encode())
    snap = tail.snapshot()
    assert len(snap) <= 1000
    assert snap.startswith(b"line ") and snap.endswith(b"line 499 \xc3\xa9\xc3\xa9\xc3\xa9\r\n")


def test_the_tail_never_starts_mid_character():
    tail = registry.ScreenTail(limit=1001)
    tail.append("€".encode() * 2000)  # no newline to cut at
    snap = tail.snapshot()
    snap.decode("utf-8")  # raises if it starts with a continuation byte
    assert len(snap) <= 1001


def test_output_hooks_see_every_chunk():
    seen = []
    registry.on_output.append(lambda sid, data: seen.append((sid, data)))
    try:
        registry.SessionTerminal("s1").record_output(b"abc")
    finally:
        registry.on_output.clear()
    assert seen == [("s1", b"abc")]


class _Flood:
    """An endless upstream, counting how much the pump took."""

    def __init__(self) -> None:
        self.taken = 0

    async def read(self) -> StreamEvent:
        await asyncio.sleep(0)
        self.taken += 16384
        return StreamEvent(STDOUT, b"y\n" * 8192)


@pytest.mark.asyncio
async def test_the_pump_stops_reading_without_acks_and_resumes_after():
    flood = _Flood()
    sent: list[bytes] = []

    async def send(frame: bytes) -> None:
        sent.append(frame)

    pump = Pump(flood, send, lambda _d: None, high=256 * 1024, low=64 * 1024)  # type: ignore[arg-type]
    task = asyncio.create_task(pump.run())
    try:
        await asyncio.sleep(0.3)
        assert pump.paused
        taken = flood.taken
        await asyncio.sleep(0.2)
        assert flood.taken == taken  # not reading while paused
        assert pump.buffered <= 256 * 1024 + 16384
        assert all(f[0] == protocol.OUTPUT for f in sent)
        pump.ack(sum(len(f) - 1 for f in sent))
        await asyncio.sleep(0.1)
        assert flood.taken > taken
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


class _Echo:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[StreamEvent] = asyncio.Queue()

    async def read(self) -> StreamEvent:
        return await self.queue.get()


@pytest.mark.asyncio
async def test_a_lone_small_chunk_is_sent_at_once(monkeypatch):
    # With the coalescing delay made 10 s, a keystroke echo arriving within 1 s proves it
    # skipped the delay (a wall-clock bound of a few ms fails on a loaded machine).
    from sessions.bridge import pump as pump_module

    monkeypatch.setattr(pump_module, "COALESCE_SECONDS", 10.0)
    echo = _Echo()
    got = asyncio.Event()

    async def send(frame: bytes) -> None:
        got.set()

    pump = Pump(echo, send, lambda _d: None)  # type: ignore[arg-type]
    task = asyncio.create_task(pump.run())
    try:
        echo.queue.put_nowait(StreamEvent(STDOUT, b"a"))  # a lone keystroke echo, no bulk before it
        await asyncio.wait_for(got.wait(), 1)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


@pytest.mark.asyncio
async def test_an_ack_of_more_than_was_sent_is_a_protocol_error():
    pump = Pump(_Echo(), lambda _f: asyncio.sleep(0), lambda _d: None, unacked=100)  # type: ignore[arg-type]
    pump.ack(60)
    with pytest.raises(protocol.ProtocolError):
        pump.ack(41)  # 40 left: an ACK of 0xFFFFFFFF would reopen the window for good
    assert pump.unacked == 40


@pytest.mark.asyncio
async def test_a_client_whose_transport_queue_passes_the_limit_is_dropped():
    flood = _Flood()
    queued = 0

    async def send(frame: bytes) -> None:
        nonlocal queued
        queued += len(frame)  # a client that never reads: everything stays queued

    pump = Pump(flood, send, lambda _d: None, outbound=lambda: queued, outbound_limit=512 * 1024)  # type: ignore[arg-type]
    task = asyncio.create_task(pump.run())
    # Lying ACKs keep the window open; only the queue shows the truth.
    while not task.done() and queued < 4 * 1024 * 1024:
        if pump.unacked:
            pump.ack(pump.unacked)
        await asyncio.sleep(0.001)
    from sessions.bridge.pump import ClientNotReading

    with pytest.raises(ClientNotReading):
        await asyncio.wait_for(task, 1)
    assert queued <= 512 * 1024 + 256 * 1024 + 8  # the limit plus the one frame already handed over


@pytest.mark.asyncio
async def test_the_pump_holds_while_the_recording_is_behind():
    flood = _Flood()
    caught_up = asyncio.Event()
    pump = Pump(flood, lambda _f: asyncio.sleep(0), lambda _d: None,  # type: ignore[arg-type]
                hold=lambda: None if caught_up.is_set() else caught_up.wait())
    task = asyncio.create_task(pump.run())
    try:
        await asyncio.sleep(0.1)
        assert flood.taken == 0
        caught_up.set()
        await asyncio.sleep(0.05)
        assert flood.taken > 0
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
