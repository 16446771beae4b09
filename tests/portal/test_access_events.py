"""The approvals queue websocket follows revocations too (portal.access_events), through the routed ASGI app."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Group, User
from django.test import Client

from portal.events import publish_on_commit
from portal.tokens import create_token, revoke_token

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

FORBIDDEN = 4403


def _approver(name: str, settings: Any) -> User:
    user = User.objects.create_user(name, f"{name}@example.test", f"{name}-pass")
    user.groups.add(Group.objects.get_or_create(name=settings.EPHEMERA_APPROVER_GROUP)[0])
    return user


def _login(user: User) -> tuple[Client, bytes]:
    client = Client()
    client.force_login(user)
    return client, f"sessionid={client.cookies['sessionid'].value}".encode()


async def _queue(*, cookie: bytes | None = None, token: str | None = None) -> WebsocketCommunicator:
    from portal.asgi import application

    headers = [(b"host", b"localhost")]
    if cookie is not None:
        headers += [(b"origin", b"http://localhost"), (b"cookie", cookie)]
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    comm = WebsocketCommunicator(application, "/ws/approvals", headers=headers)
    connected, _ = await comm.connect(timeout=5)
    assert connected
    return comm


async def _still_listening(comm: WebsocketCommunicator) -> None:
    """Still in the queue: the next broadcast arrives (and nothing, e.g. a close, before it)."""
    await sync_to_async(publish_on_commit)("approvals", {"type": "request.changed", "id": "x", "status": "pending"})
    assert (await comm.receive_json_from(timeout=3))["type"] == "request.changed"


async def _closed_forbidden(comm: WebsocketCommunicator) -> None:
    closed = await comm.receive_output(timeout=5)
    assert closed["type"] == "websocket.close" and closed["code"] == FORBIDDEN, closed
    assert closed.get("reason")
    # ...and out of the queue's group: a broadcast reaches nobody here.
    await sync_to_async(publish_on_commit)("approvals", {"type": "request.changed", "id": "y", "status": "pending"})
    assert await comm.receive_nothing(timeout=0.3)


@pytest.mark.parametrize("how", ["user_side", "group_side", "clear"])
async def test_an_approver_removed_from_approvers_leaves_the_queue(settings: Any, how: str) -> None:
    bob = await sync_to_async(_approver)("bob", settings)
    _, cookie = await sync_to_async(_login)(bob)
    comm = await _queue(cookie=cookie)
    try:
        await sync_to_async(bob.groups.add)(await sync_to_async(Group.objects.create)(name="helpers"))
        await _still_listening(comm)  # re-checked, still an approver
        approvers = await sync_to_async(Group.objects.get)(name=settings.EPHEMERA_APPROVER_GROUP)
        if how == "user_side":
            await sync_to_async(bob.groups.remove)(approvers)
        elif how == "group_side":
            await sync_to_async(approvers.user_set.remove)(bob)
        else:
            await sync_to_async(bob.groups.clear)()
        await _closed_forbidden(comm)
    finally:
        await comm.disconnect()


async def test_an_admin_whose_superuser_flag_is_taken_leaves_the_queue() -> None:
    root = await sync_to_async(User.objects.create_superuser)("root", "root@example.test", "root-pass")
    _, cookie = await sync_to_async(_login)(root)
    comm = await _queue(cookie=cookie)
    try:
        await _still_listening(comm)
        root.is_superuser = False
        await sync_to_async(root.save)()
        await _closed_forbidden(comm)
    finally:
        await comm.disconnect()


async def test_logging_out_closes_the_queue_of_that_login(settings: Any) -> None:
    bob = await sync_to_async(_approver)("bob", settings)
    client, cookie = await sync_to_async(_login)(bob)
    comm = await _queue(cookie=cookie)
    try:
        await sync_to_async(client.post)("/logout/")
        await _closed_forbidden(comm)
    finally:
        await comm.disconnect()


async def test_revoking_the_token_closes_the_queue(settings: Any) -> None:
    from portal.models import ApiToken

    bob = await sync_to_async(_approver)("bob", settings)
    comm = await _queue(token=await sync_to_async(create_token)(bob))
    try:
        await _still_listening(comm)
        await sync_to_async(revoke_token)((await sync_to_async(ApiToken.objects.get)(user=bob)).pk)
        await _closed_forbidden(comm)
    finally:
        await comm.disconnect()


async def test_deactivating_the_approver_closes_the_queue(settings: Any) -> None:
    carol = await sync_to_async(_approver)("carol", settings)
    _, cookie = await sync_to_async(_login)(carol)
    comm = await _queue(cookie=cookie)
    try:
        carol.is_active = False
        await sync_to_async(carol.save)()
        await _closed_forbidden(comm)
    finally:
        await comm.disconnect()
