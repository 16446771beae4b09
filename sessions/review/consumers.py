"""The read-only live view: /ws/sessions/<id>/watch streams a running session's output.

Only output goes out (the current screen on join, then what the shell prints, coalesced by
the recorder every 100 ms through the channel layer); nothing a watcher sends is read, so
a watcher can never type into the engineer's shell. Opening it is audited, and while it is
open the watcher is in sessions.review.presence (the requester's terminal and the running
sessions page show who is watching).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.core.exceptions import PermissionDenied

from portal import attempts, permissions
from portal.audit import AuditOrigin
from portal.events import session_group
from portal.ws_auth import LiveAccessMixin
from sessions.bridge import protocol, registry
from sessions.bridge.transport import probe_for
from sessions.choices import SessionStatus
from sessions.models import DebugSession
from sessions.recording.live import watch_group
from sessions.recording.selectors import output_tail
from sessions.review import presence, services

log = logging.getLogger(__name__)

# What a watcher may leave unread before it is dropped (the terminal's window, about).
WATCH_OUTBOUND_LIMIT = 1024 * 1024


@dataclass(frozen=True)
class WatchAccess:
    requester: str = ""
    close_code: int = 0
    message: str = ""


def watch_access(*, user: Any, session_id: str) -> WatchAccess:
    if user is None or not user.is_authenticated:
        return WatchAccess(close_code=protocol.CLOSE_UNAUTHENTICATED, message="Not logged in (or the API token is invalid).")
    session = DebugSession.objects.select_related("request", "request__requester").filter(pk=session_id).first()
    if session is None or not permissions.can_view_request(user, session.request):
        return WatchAccess(close_code=protocol.CLOSE_NOT_FOUND, message="No such session.")
    if session.status != SessionStatus.RUNNING:
        return WatchAccess(close_code=protocol.CLOSE_GONE, message=f"The session is {session.get_status_display().lower()}.")
    if not permissions.can_watch_session(user, session):
        return WatchAccess(
            close_code=protocol.CLOSE_FORBIDDEN, message="Only approvers, auditors and admins may watch a session."
        )
    return WatchAccess(requester=session.request.requester.get_username())


class WatchConsumer(LiveAccessMixin, AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.session_id = str(self.scope["url_route"]["kwargs"]["session_id"])
        self.joined: list[str] = []
        self.closing = False
        self.watch_id: Any = None  # this socket's row in sessions.review.presence
        self.refresher: asyncio.Task | None = None
        self.outbound = probe_for(self.base_send)
        await self.accept()  # first, so a refusal carries a close code and a message
        # Before the check: a revocation from now on is heard (portal.access_events).
        await self.join_access_group()
        user = self.scope.get("user")
        access = await database_sync_to_async(self._access_now)()
        if access.close_code:
            if access.close_code == protocol.CLOSE_FORBIDDEN:  # signed in, but not allowed to watch: audited
                await attempts.record_refusal_async(scope=self.scope, what="watch", target=str(self.session_id),
                                                    reason=access.message)
            await self._finish(access.close_code, "denied", access.message)
            return
        try:
            await database_sync_to_async(services.session_watch_started)(
                session_id=self.session_id, watcher=user, origin=AuditOrigin.from_scope(self.scope)
            )
        except (PermissionDenied, DebugSession.DoesNotExist):
            await self._finish(protocol.CLOSE_GONE, "denied", "This session can no longer be watched.")
            return
        for group in (watch_group(self.session_id), session_group(self.session_id)):
            await self.channel_layer.group_add(group, self.channel_name)
            self.joined.append(group)
        # After joining the session's group: an end from now on reaches _finish, which removes
        # the row again (an end before this is caught by the row's session being over).
        self.watch_id = await database_sync_to_async(presence.watch_opened)(session_id=self.session_id, watcher=user)
        self.refresher = asyncio.create_task(self._refresh_presence(user))
        await self.send(
            bytes_data=protocol.status(
                "watching", f"Watching {access.requester}'s session live, read-only: nothing you type reaches it."
            )
        )
        terminal = registry.peek(self.session_id)
        tail = terminal.tail.snapshot() if terminal is not None else b""
        if not tail:  # the terminal lives in another portal process: the recording's tail
            tail = await database_sync_to_async(output_tail)(self.session_id)
        if tail:
            await self.send(bytes_data=protocol.output(tail))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Read-only: whatever a watcher sends is dropped."""

    async def watch_output(self, event: dict[str, Any]) -> None:
        if self.closing:
            return
        # Watchers get no flow control (they never write): a watcher that doesn't read is
        # dropped once its queue passes the limit, instead of growing this process.
        if self.outbound is not None and self.outbound() > WATCH_OUTBOUND_LIMIT:
            log.warning("watch of %s: dropping a watcher that does not read", self.session_id)
            await self._finish(protocol.CLOSE_NOT_READING, "error", "Disconnected: this viewer left too much output unread.")
            return
        await self.send(bytes_data=protocol.output(event["data"]))

    async def session_changed(self, event: dict[str, Any]) -> None:
        if event.get("status") in (SessionStatus.ENDED, SessionStatus.FAILED):
            await self._finish(protocol.CLOSE_GONE, "ended", event.get("message") or f"The session has {event['status']}.")

    async def session_ending_soon(self, event: dict[str, Any]) -> None:
        # The same group carries the terminal's ending-soon notice (portal.notifications.ending_soon).
        if not self.closing:
            await self.send(bytes_data=protocol.status("ending_soon", str(event.get("message") or ""), expires_at=event.get("expires_at")))

    async def session_watchers(self, event: dict[str, Any]) -> None:
        """The same group tells the requester who watches (this one included): not for watchers."""

    async def _refresh_presence(self, user: Any) -> None:
        """Keep this watch's row fresh, so readers don't take it for a dead process's."""
        while not self.closing:
            await asyncio.sleep(presence.WATCH_REFRESH_SECONDS)
            if self.closing:
                return
            try:
                if not await database_sync_to_async(presence.watch_seen)(watch_id=self.watch_id):
                    # Cleaned up as stale while this process stalled: open it again.
                    self.watch_id = await database_sync_to_async(presence.watch_opened)(
                        session_id=self.session_id, watcher=user
                    )
            except Exception:  # the next round tries again; the watch itself goes on
                log.exception("watch of %s: refreshing who is watching failed", self.session_id)

    def _access_now(self) -> WatchAccess:
        """Sync: the handshake's credential must still hold (it may have been revoked since)."""
        user, problem = self.credential_user()
        if user is None:
            return WatchAccess(close_code=protocol.CLOSE_UNAUTHENTICATED, message=problem)
        return watch_access(user=user, session_id=self.session_id)

    def permission_problem(self, user: Any) -> str:
        access = watch_access(user=user, session_id=self.session_id)
        # An ended session closes through session_changed, with the end's own message.
        if access.close_code in (0, protocol.CLOSE_GONE):
            return ""
        return "Your access changed: you may no longer watch this session."

    async def access_revoked(self, message: str) -> None:
        await self._finish(protocol.CLOSE_FORBIDDEN, "revoked", message)

    async def _finish(self, code: int, event: str, message: str) -> None:
        if self.closing:
            return
        self.closing = True
        await self.send(bytes_data=protocol.status(event, message))
        await self.close(code=code, reason=message[:120] if message else None)
        await self._leave()

    async def disconnect(self, code: int) -> None:
        self.closing = True
        await self._leave()

    async def _leave(self) -> None:
        for group in self.joined:
            await self.channel_layer.group_discard(group, self.channel_name)
        self.joined = []
        if self.refresher is not None and self.refresher is not asyncio.current_task():
            self.refresher.cancel()
        self.refresher = None
        watch_id, self.watch_id = self.watch_id, None
        if watch_id is not None:
            try:
                await database_sync_to_async(presence.watch_closed)(watch_id=watch_id)
            except Exception:  # the row goes stale on its own; the requester just hears nothing
                log.exception("watch of %s: recording the leave failed", self.session_id)
        await self.leave_access_group()
