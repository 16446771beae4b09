"""The read-only live view: who may watch, what a watcher sees, and that it never types."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async

from portal.models import AuditEvent
from sessions.bridge import protocol
from tests.sessions.conftest import open_term

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


def _watch_path(session: Any) -> str:
    return f"/ws/sessions/{session.pk}/watch"


async def _ready(term: Any) -> None:
    await term.until(lambda: any(s["event"] == "connected" for s in term.statuses))
    await term.resize(100, 30)


@pytest.mark.parametrize(
    "who,code",
    [("alice", protocol.CLOSE_FORBIDDEN), ("eve", protocol.CLOSE_NOT_FOUND), (None, protocol.CLOSE_UNAUTHENTICATED)],
)
async def test_it_refuses_the_requester_strangers_and_anonymous(
    term_session: Any, term_users: Any, who: str | None, code: int
) -> None:
    user = getattr(term_users, who) if who else None
    watcher, _ = await open_term(term_session, user=user, path=_watch_path(term_session))
    try:
        assert await watcher.until_closed() == code
        assert watcher.statuses[-1]["event"] == "denied" and not watcher.out
    finally:
        await watcher.close()
    assert not await sync_to_async(AuditEvent.objects.filter(action="session.watched").exists)()


@pytest.mark.parametrize("who", ["bob", "dave", "admin"])
async def test_approvers_auditors_and_admins_watch_live_and_read_only(term_session: Any, term_users: Any, who: str) -> None:
    term, _ = await open_term(term_session, user=term_users.alice)
    watcher = None
    try:
        await _ready(term)
        await term.run("echo before-$((1+1))", "b")
        watcher, _ = await open_term(term_session, user=getattr(term_users, who), path=_watch_path(term_session))
        await watcher.until(lambda: any(s["event"] == "watching" for s in watcher.statuses))
        await watcher.expect_output(b"before-2")  # the current screen on join
        await term.run("echo live-$((3*3))", "l")
        await watcher.expect_output(b"live-9")  # then output as it happens
        # Whatever the watcher sends never reaches the shell.
        await watcher.type("echo pwned-$((7*6))\r")
        await watcher.resize(20, 5)
        out = await term.run("stty size; echo after", "a")
        assert b"30 100" in out
        assert b"pwned" not in term.out and b"42" not in term.out
    finally:
        await term.close()
        if watcher is not None:
            await watcher.close()
    event = await sync_to_async(AuditEvent.objects.select_related("actor").get)(action="session.watched")
    assert event.actor.username == who and str(event.session_id) == str(term_session.pk)


async def test_watchers_are_told_when_the_session_ends(term_session: Any, term_users: Any) -> None:
    from sessions import services

    watcher, _ = await open_term(term_session, user=term_users.dave, path=_watch_path(term_session))
    try:
        await watcher.until(lambda: any(s["event"] == "watching" for s in watcher.statuses))
        await sync_to_async(services.session_end)(session_id=term_session.pk, actor=term_users.alice, reason="user")
        assert await watcher.until_closed() == protocol.CLOSE_GONE
        assert watcher.statuses[-1]["event"] == "ended"
    finally:
        await watcher.close()
    # An ended session can't be watched any more.
    late, _ = await open_term(term_session, user=term_users.dave, path=_watch_path(term_session))
    try:
        assert await late.until_closed() == protocol.CLOSE_GONE
    finally:
        await late.close()
