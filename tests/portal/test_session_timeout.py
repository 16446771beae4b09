"""Web sessions end 8 h after sign-in or after 60 min without a request from the user.

They used to last 14 days (Django's default), however long the browser sat idle.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client

from portal.session_timeout import LAST_ACTIVE_AT, SIGNED_IN_AT

HOME = "/"


@pytest.fixture(autouse=True)
def _limits(settings: Any) -> None:
    settings.EPHEMERA_SESSION_MAX_AGE_HOURS = 8
    settings.EPHEMERA_SESSION_IDLE_MINUTES = 60


def _signed_in_client(user: User) -> Client:
    client = Client()
    resp = client.post("/login/", {"username": user.get_username(), "password": f"{user.get_username()}-demo-pass"})
    assert resp.status_code == 302
    return client


def _age(client: Client, **seconds_ago: float) -> None:
    """Move the session's clocks back: signed_in=…, last_active=… seconds ago."""
    session = client.session
    now = time.time()
    if "signed_in" in seconds_ago:
        session[SIGNED_IN_AT] = now - seconds_ago["signed_in"]
    if "last_active" in seconds_ago:
        session[LAST_ACTIVE_AT] = now - seconds_ago["last_active"]
    session.save()


def _is_signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_signing_in_starts_both_clocks_and_an_8_hour_cookie(alice: User) -> None:
    client = Client()
    before = time.time()
    resp = client.post("/login/", {"username": "alice", "password": "alice-demo-pass"})
    assert resp.cookies["sessionid"]["max-age"] == 8 * 3600
    assert client.session[SIGNED_IN_AT] >= before and client.session[LAST_ACTIVE_AT] >= before


def test_it_signs_out_after_an_hour_idle(alice: User) -> None:
    client = _signed_in_client(alice)
    _age(client, last_active=61 * 60)
    resp = client.get(HOME)
    assert resp.status_code == 302 and resp["Location"].startswith("/login/")
    assert not _is_signed_in(client)
    page = client.get(resp["Location"]).content.decode()
    assert "You were signed out after 60 minutes without activity." in page


def test_a_request_within_the_hour_keeps_the_session(alice: User) -> None:
    client = _signed_in_client(alice)
    _age(client, last_active=59 * 60)
    assert client.get(HOME).status_code == 200
    assert time.time() - client.session[LAST_ACTIVE_AT] < 5  # the clock restarted


def test_background_polling_does_not_keep_a_session_alive(alice: User) -> None:
    client = _signed_in_client(alice)
    _age(client, last_active=30 * 60)
    stamp = client.session[LAST_ACTIVE_AT]
    assert client.get("/api/v1/requests", HTTP_X_EPHEMERA_BACKGROUND="1").status_code == 200
    assert client.session[LAST_ACTIVE_AT] == stamp
    _age(client, last_active=61 * 60)
    assert client.get("/api/v1/requests", HTTP_X_EPHEMERA_BACKGROUND="1").status_code == 401
    assert not _is_signed_in(client)


def test_it_signs_out_8_hours_after_sign_in_however_active(alice: User) -> None:
    client = _signed_in_client(alice)
    _age(client, signed_in=8 * 3600 + 1, last_active=10)
    assert client.get(HOME).status_code == 302
    assert not _is_signed_in(client)


def test_the_limits_are_settings(alice: User, settings: Any) -> None:
    settings.EPHEMERA_SESSION_IDLE_MINUTES = 5
    client = _signed_in_client(alice)
    _age(client, last_active=6 * 60)
    assert client.get(HOME).status_code == 302


def test_a_session_without_the_clocks_starts_them(alice: User) -> None:
    client = Client()
    client.force_login(alice)
    session = client.session
    session.pop(SIGNED_IN_AT, None)
    session.pop(LAST_ACTIVE_AT, None)
    session.save()
    assert client.get(HOME).status_code == 200
    assert SIGNED_IN_AT in client.session and LAST_ACTIVE_AT in client.session


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_timed_out_session_cannot_open_a_websocket(bob: User) -> None:
    from portal.asgi import application

    client = await sync_to_async(_signed_in_client)(bob)
    await sync_to_async(_age)(client, last_active=61 * 60)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    comm = WebsocketCommunicator(
        application, "/ws/approvals", headers=[(b"origin", b"http://localhost"), (b"host", b"localhost"), (b"cookie", cookie)]
    )
    try:
        connected, _ = await comm.connect()
        # Anonymous now: the approvals consumer accepts, then closes with 4403.
        assert connected
        assert (await comm.receive_output(3))["code"] == 4403
    finally:
        await comm.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_live_session_still_opens_its_websocket(bob: User) -> None:
    from portal.asgi import application

    client = await sync_to_async(_signed_in_client)(bob)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    comm = WebsocketCommunicator(
        application, "/ws/approvals", headers=[(b"origin", b"http://localhost"), (b"host", b"localhost"), (b"cookie", cookie)]
    )
    try:
        connected, _ = await comm.connect()
        assert connected
        assert await comm.receive_nothing(0.5)
    finally:
        await comm.disconnect()
