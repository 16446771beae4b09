"""The approvals websocket is read-only: whatever a client sends is ignored, never a crash.

Channels decodes a frame before receive_json, so malformed JSON, JSON nested 10,000 deep
and binary frames used to raise in the consumer: the connection died with a logged traceback.
"""

from __future__ import annotations

import logging

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from tests.approvals.test_consumer_approvals import _communicator, _publish_changed, _user

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

REQUEST_ID = "1b6a3c1e-0000-4000-8000-0000000000f0"
DEEP = "[" * 10_000 + "]" * 10_000


async def _still_served(comm: WebsocketCommunicator) -> None:
    """The socket is open and still gets the queue's events."""
    await _publish_changed(REQUEST_ID, "pending")
    assert await comm.receive_json_from(timeout=3) == {"type": "request.changed", "id": REQUEST_ID, "status": "pending"}


@pytest.mark.parametrize(
    "frame",
    [
        {"text": "{not json"},
        {"text": DEEP},
        {"text": '{"type": "request.approve", "id": "' + REQUEST_ID + '"}'},  # valid JSON: ignored too
        {"text": ""},  # Channels' JSON consumer takes an empty text for a binary frame, and raises
        {"bytes": b"\x00\xffbinary"},
    ],
    ids=["malformed", "nested-10000", "json", "empty-text", "binary"],
)
async def test_whatever_the_client_sends_is_ignored(frame: dict[str, object], caplog: pytest.LogCaptureFixture) -> None:
    bob = await sync_to_async(_user)("bob", approver=True)
    comm = await _communicator(bob)
    try:
        connected, _ = await comm.connect()
        assert connected
        with caplog.at_level(logging.WARNING):
            await comm.send_input({"type": "websocket.receive", **frame})  # as Daphne hands a frame over
            assert await comm.receive_nothing(timeout=0.3)  # no answer, and above all no close
            await _still_served(comm)
        assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records]
    finally:
        await comm.disconnect()


async def test_a_flood_of_junk_changes_nothing() -> None:
    bob = await sync_to_async(_user)("bob", approver=True)
    comm = await _communicator(bob)
    try:
        assert (await comm.connect())[0]
        for _ in range(50):
            await comm.send_to(text_data=DEEP)
            await comm.send_to(bytes_data=b"\x81")
        assert await comm.receive_nothing(timeout=0.3)
        await _still_served(comm)
    finally:
        await comm.disconnect()

