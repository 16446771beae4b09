"""The requester hears who watches: watch sockets joining and leaving, through the routed ASGI
app, reach the requester's terminal as `watcher_joined` / `watcher_left` STATUS messages, and
the database knows who is watching (what the running-sessions list shows)."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async

from sessions.review import presence
from sessions.review.models import SessionWatch
from tests.sessions.conftest import open_term

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


def _watch_path(session: Any) -> str:
    return f"/ws/sessions/{session.pk}/watch"


def _watcher_events(term: Any) -> list[tuple[str, str, list[str]]]:
    return [(s["event"], s["watcher"], s["watchers"]) for s in term.statuses if s["event"].startswith("watcher_")]


async def _watching(term: Any) -> None:
    await term.until(lambda: any(s["event"] == "watching" for s in term.statuses))


async def test_the_requester_is_told_who_starts_and_stops_watching(term_session: Any, term_users: Any) -> None:
    term, _ = await open_term(term_session, user=term_users.alice)
    bob = dave = None
    try:
        await term.until(lambda: any(s["event"] == "connected" for s in term.statuses))
        assert term.statuses[0]["watchers"] == []  # nobody yet
        bob, _ = await open_term(term_session, user=term_users.bob, path=_watch_path(term_session))
        await _watching(bob)
        await term.until(lambda: len(_watcher_events(term)) == 1)
        assert _watcher_events(term) == [("watcher_joined", "bob", ["bob"])]
        assert "bob is watching" in term.statuses[-1]["message"]
        dave, _ = await open_term(term_session, user=term_users.dave, path=_watch_path(term_session))
        await _watching(dave)
        await term.until(lambda: len(_watcher_events(term)) == 2)
        assert _watcher_events(term)[-1] == ("watcher_joined", "dave", ["bob", "dave"])
        assert await sync_to_async(presence.watcher_names)(term_session.pk) == ["bob", "dave"]

        await bob.close()
        bob = None
        await term.until(lambda: len(_watcher_events(term)) == 3)
        assert _watcher_events(term)[-1] == ("watcher_left", "bob", ["dave"])
        assert await sync_to_async(presence.watcher_names)(term_session.pk) == ["dave"]
        # The other watcher's socket shares the session's group: the event must not break it.
        await term.run("echo still-$((2+3))", "s")
        await dave.expect_output(b"still-5")
        assert dave.close_code is None
    finally:
        for ws in (term, bob, dave):
            if ws is not None:
                await ws.close()


async def test_a_reconnecting_terminal_is_told_who_is_already_watching(term_session: Any, term_users: Any) -> None:
    watcher, _ = await open_term(term_session, user=term_users.admin, path=_watch_path(term_session))
    term = None
    try:
        await _watching(watcher)
        term, _ = await open_term(term_session, user=term_users.alice)
        await term.until(lambda: any(s["event"] == "connected" for s in term.statuses))
        connected = next(s for s in term.statuses if s["event"] == "connected")
        assert connected["watchers"] == ["admin"]
    finally:
        await watcher.close()
        if term is not None:
            await term.close()
    # Every watch row goes with its socket.
    assert not await sync_to_async(SessionWatch.objects.exists)()


async def test_a_refused_watcher_is_never_counted(term_session: Any, term_users: Any) -> None:
    term, _ = await open_term(term_session, user=term_users.alice)
    eve = None
    try:
        await term.until(lambda: any(s["event"] == "connected" for s in term.statuses))
        eve, _ = await open_term(term_session, user=term_users.eve, path=_watch_path(term_session))
        await eve.until_closed()
        await term.run("echo after-$((1+1))", "a")
        assert _watcher_events(term) == []
        assert not await sync_to_async(SessionWatch.objects.exists)()
    finally:
        await term.close()
        if eve is not None:
            await eve.close()


async def test_watchers_of_an_ending_session_leave_no_rows(term_session: Any, term_users: Any) -> None:
    from sessions import services

    watcher, _ = await open_term(term_session, user=term_users.bob, path=_watch_path(term_session))
    try:
        await _watching(watcher)
        assert await sync_to_async(presence.watcher_names)(term_session.pk) == ["bob"]
        await sync_to_async(services.session_end)(session_id=term_session.pk, actor=term_users.alice, reason="user")
        await watcher.until_closed()
    finally:
        await watcher.close()
    assert not await sync_to_async(SessionWatch.objects.exists)()
