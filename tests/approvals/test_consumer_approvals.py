"""The live approvals websocket, driven through the real routed ASGI application."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Group, User
from django.test import Client

from portal.asgi import application
from portal.events import publish_on_commit

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

ORIGIN = (b"origin", b"http://localhost")


def _user(name: str, *, approver: bool = False) -> User:
    user = User.objects.create_user(name, f"{name}@example.test", f"{name}-pass")
    if approver:
        group, _ = Group.objects.get_or_create(name="approvers")
        user.groups.add(group)
    return user


def _cookie_for(user: User) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def _communicator(user: User | None) -> WebsocketCommunicator:
    headers = [ORIGIN, (b"host", b"localhost")]
    if user is not None:
        headers.append((b"cookie", await sync_to_async(_cookie_for)(user)))
    return WebsocketCommunicator(application, "/ws/approvals", headers=headers)


async def _publish_changed(request_id: str, status: str) -> None:
    # publish_on_commit outside a transaction sends right away (autocommit), as after a commit.
    await sync_to_async(publish_on_commit)("approvals", {"type": "request.changed", "id": request_id, "status": status})


async def test_approver_receives_request_changed():
    bob = await sync_to_async(_user)("bob", approver=True)
    comm = await _communicator(bob)
    try:
        connected, _ = await comm.connect()
        assert connected
        await _publish_changed("1b6a3c1e-0000-4000-8000-000000000001", "pending")
        msg = await comm.receive_json_from(timeout=3)
        assert msg == {"type": "request.changed", "id": "1b6a3c1e-0000-4000-8000-000000000001", "status": "pending"}
    finally:
        await comm.disconnect()


@pytest.mark.parametrize("who", ["alice", "anonymous"])
async def test_non_approvers_are_closed_with_4403(who):
    user = await sync_to_async(_user)("alice") if who == "alice" else None
    comm = await _communicator(user)
    try:
        connected, _ = await comm.connect()
        assert connected  # accepted, then closed with an application code the page can read
        closed = await comm.receive_output(timeout=3)
        assert closed == {"type": "websocket.close", "code": 4403}
        # ...and it never joined the group: a broadcast reaches nobody here.
        await _publish_changed("1b6a3c1e-0000-4000-8000-000000000002", "pending")
        assert await comm.receive_nothing(timeout=0.3)
    finally:
        await comm.disconnect()


async def test_foreign_origin_is_refused():
    bob = await sync_to_async(_user)("bob", approver=True)
    comm = WebsocketCommunicator(
        application,
        "/ws/approvals",
        headers=[
            (b"origin", b"https://evil.example"),
            (b"host", b"localhost"),
            (b"cookie", await sync_to_async(_cookie_for)(bob)),
        ],
    )
    try:
        connected, _ = await comm.connect()
        assert not connected
    finally:
        await comm.disconnect()


def _create_through_the_form(alice: User) -> str:
    client = Client()
    client.force_login(alice)
    pods = client.get("/cluster/namespaces/default/pods").json()["items"]
    pod = next(p for p in pods if p.startswith("distroless-nginx-"))
    resp = client.post(
        "/requests/new",
        {
            "namespace": "default",
            "pod": pod,
            "container": "distroless-nginx-ctr",
            "image": "busybox",
            "profile": "general",
            "reason": "workers hang",
            "duration_minutes": "15",
        },
    )
    assert resp.status_code == 302, resp.content
    return resp["Location"].rstrip("/").rsplit("/", 1)[-1]


async def test_approver_hears_when_alice_creates_a_request(kube):
    bob = await sync_to_async(_user)("bob", approver=True)
    alice = await sync_to_async(_user)("alice")
    bob_ws = await _communicator(bob)
    alice_ws = await _communicator(alice)
    try:
        assert (await bob_ws.connect())[0]
        await alice_ws.connect()
        assert (await alice_ws.receive_output(timeout=3))["code"] == 4403
        request_id = await sync_to_async(_create_through_the_form, thread_sensitive=False)(alice)
        msg = await bob_ws.receive_json_from(timeout=5)
        assert msg == {"type": "request.changed", "id": request_id, "status": "pending"}
        # The fragment the page then fetches shows it to bob, with buttons.
        fragment = await sync_to_async(_fragment_for)(bob)
        assert request_id in fragment
        assert 'value="approve"' in fragment
    finally:
        await bob_ws.disconnect()
        await alice_ws.disconnect()


def _fragment_for(user: User) -> str:
    client = Client()
    client.force_login(user)
    return client.get("/approvals/pending").content.decode()
