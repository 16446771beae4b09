"""Who may open a session's terminal, checked through the routed ASGI app (real Origin and
auth stack) against a session provisioned on kubesim."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from sessions.bridge import protocol
from tests.sessions.conftest import open_term

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


async def _refused_with(term, code: int) -> None:  # type: ignore[no-untyped-def]
    try:
        assert await term.until_closed(10) == code
        assert term.statuses and term.statuses[-1]["event"] == "denied" and term.statuses[-1]["message"]
    finally:
        await term.close()


async def test_it_lets_the_requester_in_with_a_cookie(term_session, term_users):
    term, connected = await open_term(term_session, user=term_users.alice)
    try:
        assert connected
        await term.until(lambda: any(s["event"] == "connected" for s in term.statuses))
        assert term.statuses[0]["expires_at"]
    finally:
        await term.close()


async def test_it_lets_the_requester_in_with_a_bearer_token_and_no_origin(term_session, term_users):
    from portal.tokens import create_token

    token = await sync_to_async(create_token)(term_users.alice)
    term, connected = await open_term(term_session, token=token, origin=None)
    try:
        assert connected
        await term.until(lambda: any(s["event"] == "connected" for s in term.statuses))
    finally:
        await term.close()


@pytest.mark.parametrize(
    ("persona", "code"),
    [("bob", protocol.CLOSE_FORBIDDEN), ("dave", protocol.CLOSE_FORBIDDEN), ("admin", protocol.CLOSE_FORBIDDEN), ("eve", protocol.CLOSE_NOT_FOUND)],
)
async def test_it_refuses_everyone_but_the_requester(term_session, term_users, persona, code):
    term, connected = await open_term(term_session, user=getattr(term_users, persona))
    assert connected  # accepted, then closed with an application code the page can explain
    await _refused_with(term, code)


async def test_it_refuses_anonymous(term_session):
    term, _ = await open_term(term_session)
    await _refused_with(term, protocol.CLOSE_UNAUTHENTICATED)


async def test_it_refuses_a_bad_token_even_with_a_valid_cookie(term_session, term_users):
    term, _ = await open_term(term_session, user=term_users.alice, token="eph_not-a-real-token")
    await _refused_with(term, protocol.CLOSE_UNAUTHENTICATED)


async def test_it_refuses_a_bad_token(term_session):
    term, _ = await open_term(term_session, token="eph_not-a-real-token", origin=None)
    await _refused_with(term, protocol.CLOSE_UNAUTHENTICATED)


@pytest.mark.parametrize("origin", [b"https://evil.example", b"http://localhost.evil.example", b"null"])
async def test_it_refuses_a_foreign_origin_with_a_cookie(term_session, term_users, origin):
    term, connected = await open_term(term_session, user=term_users.alice, origin=origin)
    assert not connected
    await term.close()


async def test_it_refuses_a_foreign_origin_even_with_a_token(term_session, term_users):
    from portal.tokens import create_token

    token = await sync_to_async(create_token)(term_users.alice)
    term, connected = await open_term(term_session, token=token, origin=b"https://evil.example")
    assert not connected
    await term.close()


async def test_it_refuses_a_cookie_without_origin(term_session, term_users):
    term, connected = await open_term(term_session, user=term_users.alice, origin=None)
    assert not connected
    await term.close()


async def test_it_accepts_an_origin_listed_in_settings(term_session, term_users, settings):
    settings.EPHEMERA_WS_ALLOWED_ORIGINS = ["https://portal.example"]
    term, connected = await open_term(term_session, user=term_users.alice, origin=b"https://portal.example")
    try:
        assert connected
        await term.until(lambda: any(s["event"] == "connected" for s in term.statuses))
    finally:
        await term.close()


async def test_it_refuses_an_unknown_session(term_session, term_users):
    term, _ = await open_term(term_session, user=term_users.alice, path=f"/ws/sessions/{uuid.uuid4()}/terminal")
    await _refused_with(term, protocol.CLOSE_NOT_FOUND)


async def test_it_refuses_an_ended_session(term_session, term_users):
    from sessions.services import session_end

    await sync_to_async(session_end)(session_id=term_session.pk, actor=term_users.alice, reason="user")
    term, _ = await open_term(term_session, user=term_users.alice)
    await _refused_with(term, protocol.CLOSE_GONE)


async def test_it_refuses_an_expired_session(term_session, term_users):
    from sessions.models import DebugSession

    await sync_to_async(DebugSession.objects.filter(pk=term_session.pk).update)(expires_at=timezone.now() - timedelta(seconds=1))
    term, _ = await open_term(term_session, user=term_users.alice)
    await _refused_with(term, protocol.CLOSE_GONE)


async def test_it_audits_connect_and_disconnect(term_session, term_users):
    from portal.models import AuditEvent

    term, _ = await open_term(term_session, user=term_users.alice)
    await term.until(lambda: any(s["event"] == "connected" for s in term.statuses))
    await term.close()
    actions = await sync_to_async(lambda: list(AuditEvent.objects.filter(session=term_session.pk).values_list("action", flat=True)))()
    assert "session.connected" in actions and "session.disconnected" in actions


def _refusals(session_id: str) -> list[tuple[str, str, str]]:
    from portal.models import AuditEvent

    return [(e.actor_name, e.data["what"], e.data["target"]) for e in AuditEvent.objects.filter(action="access.refused")
            if e.data.get("target") == session_id]


async def test_a_refused_terminal_and_a_refused_watch_are_audited_once_each(term_session, term_users):
    sid = str(term_session.pk)
    for _ in range(3):  # a retry loop: one event, the repeats counted
        term, _ = await open_term(term_session, user=term_users.bob)
        await _refused_with(term, protocol.CLOSE_FORBIDDEN)
    watch, _ = await open_term(term_session, user=term_users.alice, path=f"/ws/sessions/{sid}/watch")
    await _refused_with(watch, protocol.CLOSE_FORBIDDEN)
    assert sorted(await sync_to_async(_refusals)(sid)) == [("alice", "watch", sid), ("bob", "terminal", sid)]
