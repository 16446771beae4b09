"""The session's end reaches a connected terminal: time limit, End, and a broken upstream."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from sessions.bridge import protocol
from tests.sessions.conftest import open_term, session_pids

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


async def _ready(term) -> None:  # type: ignore[no-untyped-def]
    await term.until(lambda: any(s["event"] == "connected" for s in term.statuses))
    await term.resize(100, 30)


async def _wait_no_pids(session_id: str, timeout: float = 15) -> list[int]:
    deadline = time.monotonic() + timeout
    pids = session_pids(session_id)
    while pids and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        pids = session_pids(session_id)
    return pids


async def test_the_time_limit_closes_the_socket_and_stops_the_shell(term_session, term_users):
    from sessions.models import DebugSession

    sid = str(term_session.pk)
    await sync_to_async(DebugSession.objects.filter(pk=sid).update)(expires_at=timezone.now() + timedelta(seconds=4))
    term, _ = await open_term(term_session, user=term_users.alice)
    try:
        await _ready(term)
        await term.run("sleep 600 & echo bg-started", "bg")  # a child of the shell must die too
        assert session_pids(sid), "the session's processes should be visible before the end"
        assert await term.until_closed(20) == protocol.CLOSE_GONE
        assert any(s["event"] == "expired" and "Time limit" in s["message"] for s in term.statuses)
    finally:
        await term.close()
    session = await sync_to_async(DebugSession.objects.get)(pk=sid)
    assert session.status == "ended" and session.end_reason == "expired"
    assert await _wait_no_pids(sid) == []


async def test_ending_the_session_closes_the_terminal(term_session, term_users):
    from sessions.services import session_end

    sid = str(term_session.pk)
    term, _ = await open_term(term_session, user=term_users.alice)
    try:
        await _ready(term)
        await term.run("echo before-end", "x")
        await sync_to_async(session_end)(session_id=sid, actor=term_users.bob, reason="revoked", comment="incident over")
        assert await term.until_closed(15) == protocol.CLOSE_GONE
        assert any(s["event"] == "ended" and s["message"] for s in term.statuses)
    finally:
        await term.close()
    assert await _wait_no_pids(sid) == []


async def test_a_cut_stream_shows_a_message_and_allows_a_reconnect(term_kube, term_session, term_users):
    term, _ = await open_term(term_session, user=term_users.alice)
    try:
        await _ready(term)
        await term.run("export KEEP=me-$((2*2))", "k")
        cut = await sync_to_async(term_kube.faults.cut_streams)(namespace="default", pod=term_session.pod)
        assert cut >= 1
        assert await term.until_closed(15) == protocol.CLOSE_UPSTREAM
        err = [s for s in term.statuses if s["event"] == "error"]
        assert err and err[-1]["reconnect"] is True and err[-1]["message"]
    finally:
        await term.close()
    again, _ = await open_term(term_session, user=term_users.alice)
    try:
        await _ready(again)
        assert b"me-4" in await again.run("echo $KEEP", "k2")
    finally:
        await again.close()


async def test_an_unreachable_cluster_shows_a_message_and_a_later_reconnect_works(term_kube, term_session, term_users):
    # Long enough that a slow connect (PostgreSQL + Redis under load) still meets the outage.
    outage = 8.0
    started = time.monotonic()
    await sync_to_async(term_kube.faults.unreachable)(outage)
    # kubesim starts the outage just after answering; connect only once it refuses, so this
    # tests "cluster down at connect" (a stream cut mid-session has its own test).
    host, port = urlsplit(term_kube.url).hostname, urlsplit(term_kube.url).port
    for _ in range(100):
        try:
            _r, w = await asyncio.open_connection(host, port)
            w.close()
            await asyncio.sleep(0.05)
        except OSError:
            break
    term, _ = await open_term(term_session, user=term_users.alice)
    try:
        assert await term.until_closed(20) == protocol.CLOSE_UPSTREAM
        err = [s for s in term.statuses if s["event"] == "error"]
        assert err and err[-1]["reconnect"] is True and "cluster" in err[-1]["message"]
    finally:
        await term.close()
    await asyncio.sleep(max(0.0, started + outage + 0.5 - time.monotonic()))
    again, _ = await open_term(term_session, user=term_users.alice)
    try:
        await _ready(again)
        assert b"back-3" in await again.run("echo back-$((1+2))", "b")
    finally:
        await again.close()
