"""Revoking a credential cuts the live access it opened: an open terminal and an open watch
close (4403, status "revoked") when their API token is revoked, their user is deactivated,
their login is signed out, or (the watch) their role is taken away. Through the routed ASGI app.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Group, User
from django.test import Client

from portal.tokens import create_token, revoke_token
from sessions.bridge import protocol
from tests.sessions.conftest import ORIGIN, Term, open_term

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

TERMINAL, WATCH = "terminal", "watch"


def _path(session: Any, kind: str) -> str:
    return f"/ws/sessions/{session.pk}/{kind}"


async def _ready(term: Term, kind: str) -> None:
    event = "connected" if kind == TERMINAL else "watching"
    await term.until(lambda: any(s["event"] == event for s in term.statuses))


async def _closed_as_revoked(term: Term, needle: str) -> None:
    assert await term.until_closed() == protocol.CLOSE_FORBIDDEN
    last = term.statuses[-1]
    assert last["event"] == "revoked" and needle in last["message"], term.statuses


async def _still_open(term: Term) -> None:
    """No close within a while: the re-check ran (messages are handled in order) and passed."""
    for _ in range(20):
        try:
            await term.next(timeout=0.05)
        except TimeoutError:
            pass
    assert term.close_code is None and not any(s["event"] == "revoked" for s in term.statuses), term.statuses


def _login(user: User) -> tuple[Client, bytes]:
    client = Client()
    client.force_login(user)
    return client, f"sessionid={client.cookies['sessionid'].value}".encode()


async def _open_with_cookie(session: Any, cookie: bytes, kind: str) -> Term:
    from portal.asgi import application

    headers = [(b"host", b"localhost"), (b"origin", ORIGIN), (b"cookie", cookie)]
    comm = WebsocketCommunicator(application, _path(session, kind), headers=headers)
    connected, _ = await comm.connect(timeout=10)
    assert connected
    return Term(comm)


def _who(users: Any, kind: str) -> User:
    return users.alice if kind == TERMINAL else users.dave  # the requester; an auditor


@pytest.mark.parametrize("kind", [TERMINAL, WATCH])
async def test_revoking_the_token_closes_the_socket_it_opened(term_session: Any, term_users: Any, kind: str) -> None:
    user = _who(term_users, kind)
    raw = await sync_to_async(create_token)(user, name="cli")
    other = await sync_to_async(create_token)(user, name="laptop")
    term, connected = await open_term(term_session, token=raw, origin=None, path=_path(term_session, kind))
    try:
        assert connected
        await _ready(term, kind)
        from portal.models import ApiToken

        ids = {t.name: t.pk for t in await sync_to_async(list)(ApiToken.objects.filter(user=user))}
        assert other
        await sync_to_async(revoke_token)(ids["laptop"])  # another token of the same user
        await _still_open(term)
        await sync_to_async(revoke_token)(ids["cli"])
        await _closed_as_revoked(term, "API token")
    finally:
        await term.close()


@pytest.mark.parametrize("kind", [TERMINAL, WATCH])
@pytest.mark.parametrize("credential", ["cookie", "token"])
async def test_deactivating_the_user_closes_the_socket(term_session: Any, term_users: Any, kind: str, credential: str) -> None:
    user = _who(term_users, kind)
    if credential == "token":
        raw = await sync_to_async(create_token)(user)
        term, _ = await open_term(term_session, token=raw, origin=None, path=_path(term_session, kind))
    else:
        term, _ = await open_term(term_session, user=user, path=_path(term_session, kind))
    try:
        await _ready(term, kind)
        user.is_active = False
        await sync_to_async(user.save)()
        await _closed_as_revoked(term, "deactivated")
    finally:
        await term.close()


@pytest.mark.parametrize("kind", [TERMINAL, WATCH])
async def test_logging_out_closes_the_sockets_of_that_login_only(term_session: Any, term_users: Any, kind: str) -> None:
    user = _who(term_users, kind)
    client, cookie = await sync_to_async(_login)(user)
    other_client, _ = await sync_to_async(_login)(user)  # the same user in another browser
    term = await _open_with_cookie(term_session, cookie, kind)
    try:
        await _ready(term, kind)
        resp = await sync_to_async(other_client.post)("/logout/")
        assert resp.status_code == 302
        await _still_open(term)
        resp = await sync_to_async(client.post)("/logout/")  # the real view, as the browser does it
        assert resp.status_code == 302
        await _closed_as_revoked(term, "signed out")
    finally:
        await term.close()


@pytest.mark.parametrize("kind", [TERMINAL, WATCH])
async def test_a_password_change_closes_cookie_sockets(term_session: Any, term_users: Any, kind: str) -> None:
    user = _who(term_users, kind)
    term, _ = await open_term(term_session, user=user, path=_path(term_session, kind))
    try:
        await _ready(term, kind)
        user.set_password("a-new-password-123")
        await sync_to_async(user.save)()
        await _closed_as_revoked(term, "signed out")  # Django's sessions die with the old password
    finally:
        await term.close()


@pytest.mark.parametrize("via", ["user", "group"])
async def test_removing_the_watchers_role_closes_the_watch(term_session: Any, term_users: Any, settings: Any, via: str) -> None:
    auditors = await sync_to_async(Group.objects.get)(name=settings.EPHEMERA_AUDITOR_GROUP)
    term, _ = await open_term(term_session, user=term_users.dave, path=_path(term_session, WATCH))
    try:
        await _ready(term, WATCH)
        await sync_to_async(term_users.dave.groups.add)(await sync_to_async(Group.objects.create)(name="helpers"))
        await _still_open(term)  # a change that leaves the role: re-checked, still allowed
        if via == "user":
            await sync_to_async(term_users.dave.groups.remove)(auditors)
        else:
            await sync_to_async(auditors.user_set.clear)()
        await _closed_as_revoked(term, "may no longer watch")
    finally:
        await term.close()


async def test_the_requesters_terminal_survives_role_changes(term_session: Any, term_users: Any, settings: Any) -> None:
    term, _ = await open_term(term_session, user=term_users.alice)
    try:
        await _ready(term, TERMINAL)
        approvers = await sync_to_async(Group.objects.get)(name=settings.EPHEMERA_APPROVER_GROUP)
        await sync_to_async(term_users.alice.groups.add)(approvers)
        await sync_to_async(term_users.alice.groups.remove)(approvers)
        await _still_open(term)
        out = await term.run("echo still-$((20+1))", "s")
        assert b"still-21" in out
    finally:
        await term.close()


async def test_someone_elses_revocation_leaves_the_socket_alone(term_session: Any, term_users: Any) -> None:
    term, _ = await open_term(term_session, user=term_users.dave, path=_path(term_session, WATCH))
    try:
        await _ready(term, WATCH)
        term_users.bob.is_active = False
        await sync_to_async(term_users.bob.save)()
        await asyncio.sleep(0.3)
        await _still_open(term)
    finally:
        await term.close()


async def test_a_socket_opened_after_a_revocation_is_refused(term_session: Any, term_users: Any) -> None:
    client, cookie = await sync_to_async(_login)(term_users.alice)
    await sync_to_async(client.post)("/logout/")
    term = await _open_with_cookie(term_session, cookie, TERMINAL)
    try:
        assert await term.until_closed() == protocol.CLOSE_UNAUTHENTICATED
    finally:
        await term.close()
