"""Live approvals queue: forwards `request.changed` events of the "approvals" group to approvers.

The consumer only routes messages. Who may listen is asked of portal.permissions; what the
browser then shows comes from a server-rendered fragment, so no permission logic runs in JS.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from portal import permissions
from portal.ws_auth import LiveAccessMixin

APPROVALS_GROUP = "approvals"
CLOSE_FORBIDDEN = 4403


def _may_listen(user: Any) -> bool:
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return permissions.is_approver(user) or permissions.is_admin(user)


class ApprovalsConsumer(LiveAccessMixin, AsyncJsonWebsocketConsumer):
    joined = False

    async def connect(self) -> None:
        # Before the check: a revocation from now on is heard (portal.access_events).
        await self.join_access_group()
        if not await database_sync_to_async(self._may_listen_now)():
            # Accept, then close with 4403: a close before accept reaches the browser as a bare
            # HTTP 403, and the page couldn't tell "forbidden" from "network down".
            await self.accept()
            await self.close(code=CLOSE_FORBIDDEN)
            await self.leave_access_group()
            return
        # Join before accepting, so no event sent after the client sees "open" is missed.
        await self.channel_layer.group_add(APPROVALS_GROUP, self.channel_name)
        self.joined = True
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.joined:
            await self.channel_layer.group_discard(APPROVALS_GROUP, self.channel_name)
            self.joined = False
        await self.leave_access_group()

    def _may_listen_now(self) -> bool:
        """Sync: the handshake's credential still holds (it may have been revoked since), and its user may listen."""
        user, _problem = self.credential_user()
        return _may_listen(user)

    def permission_problem(self, user: Any) -> str:
        return "" if _may_listen(user) else "Only approvers and admins may follow the approvals queue."

    async def access_revoked(self, message: str) -> None:
        await self.disconnect(CLOSE_FORBIDDEN)  # out of the queue's group before anything else is sent
        await self.close(code=CLOSE_FORBIDDEN, reason=message[:120])

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        """The queue is read-only: decisions go through the HTML form (CSRF) or the API.

        So every frame is dropped here, before AsyncJsonWebsocketConsumer would decode it:
        malformed JSON, JSON nested deep enough to exhaust the recursion limit, or a binary
        frame would otherwise raise and kill the connection with a traceback in the log.
        """

    async def request_changed(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "request.changed", "id": str(event.get("id", "")), "status": str(event.get("status", ""))})
