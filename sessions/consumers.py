"""The terminal websocket: routes frames between the browser and the session's bridge.

Access and audit go through sync code run via database_sync_to_async; the byte path
(browser <-> attach stream) stays in this process, see sessions.bridge.pump.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from portal import attempts, json_logging, metrics
from portal.kube.attach import AttachError, ChannelStream, open_attach
from portal.kube.useragent import acting_for
from portal.ws_auth import LiveAccessMixin
from sessions.bridge import protocol, registry
from sessions.bridge.access import TerminalAccess, terminal_access
from sessions.bridge.pump import ClientNotReading, Pump
from sessions.bridge.transport import probe_for
from sessions.choices import EndReason, SessionStatus
from sessions.recording import live as recording

log = logging.getLogger(__name__)

MAX_EARLY_INPUT = 64 * 1024  # keystrokes typed before the attach stream is open


class TerminalConsumer(LiveAccessMixin, AsyncWebsocketConsumer):
    session_id: str
    stream: ChannelStream | None = None
    pump: Pump | None = None

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Keystrokes, ACKs and resizes never touch the database: skip the hop Channels makes
        # before every message (aclose_old_connections, on its one shared database thread), so
        # typing never queues behind other work there. Everything else goes the usual way.
        if message.get("type") == "websocket.receive":
            await self.websocket_receive(message)
            return
        await super().dispatch(message)

    async def connect(self) -> None:
        self.session_id = str(self.scope["url_route"]["kwargs"]["session_id"])
        self.user = self.scope.get("user")
        self.closing = False
        self.expiring = False
        self.audited = False
        self.tasks: list[asyncio.Task] = []
        self.size: tuple[int, int] | None = None
        self.early_input = bytearray()
        self.unacked_replay = 0
        self.group = ""
        # Accept first: a refusal before accept becomes a bare HTTP 403 and the browser
        # could not tell "log in again" from "session over".
        await self.accept()
        metrics.terminal_opened(self)
        json_logging.bind(session_id=self.session_id, user=getattr(self.user, "username", None))
        # Before the check: a revocation from now on is heard (portal.access_events).
        await self.join_access_group()
        access = await database_sync_to_async(self._access_now)()
        if not access.allowed:
            if access.close_code == protocol.CLOSE_FORBIDDEN:  # signed in, but not theirs: audited
                await attempts.record_refusal_async(scope=self.scope, what="terminal", target=str(self.session_id),
                                                    reason=access.message)
            await self._finish(access.close_code, "denied", access.message)
            return
        session = access.session
        assert session is not None
        self.namespace, self.pod, self.container = session.namespace, session.pod, session.container_name
        self.expires_at: datetime = session.expires_at  # type: ignore[assignment]

        self.terminal = registry.terminal_for(self.session_id)
        previous, self.terminal.owner = self.terminal.owner, self
        if previous is not None:
            await previous.replaced()

        from portal.audit import AuditOrigin
        from portal.events import session_group
        from sessions import services

        self.origin = AuditOrigin.from_scope(self.scope)
        self.group = session_group(self.session_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        try:
            connected = await database_sync_to_async(services.session_connected)(
                session_id=self.session_id, user=self.user, origin=self.origin
            )
        except PermissionDenied:  # the session ended between the check and now
            await self._finish(protocol.CLOSE_GONE, "denied", "This terminal is no longer available.")
            return
        self.audited = True
        # Under a `clock: first_connect` rule the first connect is what starts the time.
        self.expires_at = connected.expires_at or self.expires_at
        self.terminal.record_connect(self.user.get_username())
        self.recording = True

        if not len(self.terminal.tail):
            # This process has no screen for the session (the portal restarted, or the
            # reconnect landed on another replica): rebuild it from the durable recording.
            from sessions.recording.selectors import output_tail

            recorded = await database_sync_to_async(output_tail)(self.session_id, limit=2 * registry.TAIL_BYTES)
            if recorded and not len(self.terminal.tail):
                self.terminal.tail.append(recorded)
        tail = self.terminal.tail.snapshot()
        from sessions.review.presence import watcher_names

        watchers = await database_sync_to_async(watcher_names)(self.session_id)  # who is watching already
        await self.send(
            bytes_data=protocol.status(
                "connected",
                # The shell printed its prompt before anyone attached (as with kubectl attach).
                ("Reattached: screen restored. " if tail else "Connected. If you don't see a prompt, press Enter. ")
                + recording.notice(),
                expires_at=self.expires_at.isoformat(),
                reattached=bool(tail),
                watchers=watchers,
            )
        )
        if tail:
            await self.send(bytes_data=protocol.output(tail))
        self.unacked_replay = len(tail)
        self.tasks.append(asyncio.create_task(self._bridge()))
        self.tasks.append(asyncio.create_task(self._expire()))

    # --- browser -> server ----------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.closing or not bytes_data:
            if text_data is not None and not self.closing:
                await self._finish(protocol.CLOSE_PROTOCOL, "error", "Text frames are not part of the protocol.")
            return
        kind, payload = bytes_data[0], bytes_data[1:]
        try:
            if kind == protocol.INPUT:
                await self._input(payload)
            elif kind == protocol.RESIZE:
                await self._resize(*protocol.parse_resize(payload))
            elif kind == protocol.ACK:
                count = protocol.parse_ack(payload)
                if self.pump is not None:
                    self.pump.ack(count)
                elif count > self.unacked_replay:  # acks for the replayed tail, before the stream is up
                    raise protocol.ProtocolError(f"ACK of {count} bytes, but only {self.unacked_replay} are unacknowledged")
                else:
                    self.unacked_replay -= count
            else:
                raise protocol.ProtocolError(f"unknown message type {kind}")
        except protocol.ProtocolError as exc:
            await self._finish(protocol.CLOSE_PROTOCOL, "error", f"Protocol error: {exc}")
        except AttachError as exc:
            await self._finish(protocol.CLOSE_UPSTREAM, "error", exc.message, reconnect=True)
        except (ConnectionError, OSError) as exc:  # aiohttp send on a dying stream
            await self._finish(protocol.CLOSE_UPSTREAM, "error", f"The cluster stream broke ({type(exc).__name__}).", reconnect=True)

    async def _input(self, data: bytes) -> None:
        metrics.TERMINAL_BYTES.labels("in").inc(len(data))
        self.terminal.record_input(data)
        if self.stream is None:
            if len(self.early_input) + len(data) <= MAX_EARLY_INPUT:
                self.early_input += data
            return
        await self.stream.write(data)

    async def _resize(self, cols: int, rows: int) -> None:
        first = self.size is None
        self.size = (cols, rows)
        self.terminal.record_resize(cols, rows)
        if self.stream is None:
            return
        if first:
            await self._redraw()
        else:
            await self.stream.resize(cols, rows)

    async def _redraw(self) -> None:
        # kubectl's trick: a size change forces full-screen programs to repaint, so the
        # screen is right after a reattach even where the replayed tail is not.
        assert self.stream is not None and self.size is not None
        cols, rows = self.size
        await self.stream.resize(cols + 1, rows + 1)
        await self.stream.resize(cols, rows)

    # --- server -> browser ----------------------------------------------------------------

    async def _bridge(self) -> None:
        from portal.kube.config import KubeConfigError, load_connection

        try:
            conn = await sync_to_async(load_connection, thread_sensitive=False)()
            with acting_for(self.session_id, self.user.get_username()):  # the terminal is its requester's alone
                self.stream = await open_attach(conn, namespace=self.namespace, pod=self.pod, container=self.container)
        except KubeConfigError as exc:
            log.error("terminal %s: %s", self.session_id, exc)
            await self._finish(protocol.CLOSE_UPSTREAM, "error", "The portal cannot reach the cluster (configuration).", reconnect=False)
            return
        except AttachError as exc:
            await self._finish(protocol.CLOSE_UPSTREAM, "error", exc.message, reconnect=exc.retryable)
            return
        if self.closing:
            await self.stream.close()
            return
        try:
            if self.size is not None:
                await self._redraw()
            if self.early_input:
                await self.stream.write(bytes(self.early_input))
                self.early_input.clear()
            self.pump = Pump(self.stream, self._send_frame, self.terminal.record_output, unacked=self.unacked_replay,
                             outbound=probe_for(self.base_send),
                             hold=lambda: recording.hold(self.session_id))
            try:
                await self.pump.run()
            except ClientNotReading as exc:
                log.warning("terminal %s: dropping a client that does not read its output (%s)", self.session_id, exc)
                await self._finish(protocol.CLOSE_NOT_READING, "error",
                                   "Disconnected: this client left too much output unread.", reconnect=False)
                return
            status = (self.pump.upstream_status or {}).get("message")
            problem = f"The cluster closed the terminal stream{': ' + status if status else ''}."
        except AttachError as exc:
            problem = exc.message
        except (ConnectionError, OSError) as exc:
            problem = f"The cluster stream broke ({type(exc).__name__})."
        await self._upstream_gone(problem)

    async def _upstream_gone(self, problem: str) -> None:
        """The attach stream ended: because the session ended (say so), or a fault (reconnect)."""
        if self.closing or self.expiring:
            return  # whoever is ending the session closes the socket with the right message
        access = await database_sync_to_async(terminal_access)(user=self.user, session_id=self.session_id)
        if not access.allowed:
            await self._finish(access.close_code, "ended", access.message)
        else:
            await self._finish(protocol.CLOSE_UPSTREAM, "error", problem, reconnect=True)

    async def _send_frame(self, frame: bytes) -> None:
        if not self.closing:
            await self.send(bytes_data=frame)
            metrics.terminal_output_frame(frame)

    async def _expire(self) -> None:
        """The time limit holds on the server, whatever the browser does."""
        while True:
            await asyncio.sleep(max(0.0, (self.expires_at - timezone.now()).total_seconds()))
            if self.closing:
                return
            # An approved extension may have moved the limit meanwhile: the database decides.
            latest = await database_sync_to_async(_expires_at)(self.session_id)
            if latest is None or latest <= timezone.now():
                break
            self.expires_at = latest
        # The message first (visible at once), then stop the shell, then close: the group's
        # "ended" broadcast from session_end is ignored meanwhile (self.expiring).
        self.expiring = True
        await self.send(bytes_data=protocol.status("expired", "Time limit reached: the session has ended and the debug shell is stopped."))
        await self._end_session(EndReason.EXPIRED)
        await self._finish(protocol.CLOSE_GONE, "", "")

    async def _end_session(self, reason: str) -> None:
        # Its own thread, not the shared database_sync_to_async one: stopping the shell execs
        # into the cluster and must not stall every other terminal's database calls.
        try:
            await sync_to_async(_end_session_now, thread_sensitive=False)(session_id=self.session_id, reason=reason)
        except Exception:  # the reaper ends it anyway; the socket still closes
            log.exception("terminal %s: ending the expired session failed", self.session_id)

    async def session_changed(self, event: dict[str, Any]) -> None:
        """From the session's group: an end or failure anywhere closes this terminal."""
        ext = event.get("extension") or {}
        if ext.get("status") == "approved" and event.get("expires_at") and not self.closing:
            # The timer re-reads the limit when it fires; this only tells the user at once.
            await self.send(bytes_data=protocol.status(
                "extended", f"The session was extended by {ext.get('minutes')} minutes.", expires_at=event["expires_at"]))
        if event.get("status") in (SessionStatus.ENDED, SessionStatus.FAILED) and not (self.closing or self.expiring):
            message = event.get("message") or f"The session has {event['status']}."
            await self._finish(protocol.CLOSE_GONE, "ended", message)

    async def session_ending_soon(self, event: dict[str, Any]) -> None:
        """From the session's group (portal.notifications.ending_soon): a status line, nothing closes."""
        if not (self.closing or self.expiring):
            await self.send(bytes_data=protocol.status("ending_soon", str(event.get("message") or ""), expires_at=event.get("expires_at")))

    async def session_watchers(self, event: dict[str, Any]) -> None:
        """From the session's group (sessions.review.presence): someone started or stopped watching."""
        if not (self.closing or self.expiring):
            await self.send(bytes_data=protocol.status(
                str(event["event"]), str(event.get("message") or ""), watcher=event.get("watcher"), watchers=event.get("watchers") or []))

    async def replaced(self) -> None:
        await self._finish(protocol.CLOSE_REPLACED, "replaced", "This terminal was opened in another window.")

    # --- access: checked on connect, and again whenever the user's access changes ----------

    def _access_now(self) -> TerminalAccess:
        """Sync: the handshake's credential must still hold (it may have been revoked since)."""
        user, problem = self.credential_user()
        if user is None:
            return TerminalAccess(None, protocol.CLOSE_UNAUTHENTICATED, problem)
        return terminal_access(user=user, session_id=self.session_id)

    def permission_problem(self, user: Any) -> str:
        access = terminal_access(user=user, session_id=self.session_id)
        # An ended or expired session closes through its own path (session_changed, _expire).
        if access.allowed or access.close_code == protocol.CLOSE_GONE:
            return ""
        return "Your access changed: you may no longer use this terminal."

    async def access_revoked(self, message: str) -> None:
        await self._finish(protocol.CLOSE_FORBIDDEN, "revoked", message)

    async def _finish(self, code: int, event: str, message: str, **extra: Any) -> None:
        if self.closing:
            return
        self.closing = True
        if event:
            await self.send(bytes_data=protocol.status(event, message, **extra))
        await self.close(code=code, reason=message[:120] if message else None)
        await self._release()
        if code == protocol.CLOSE_GONE:
            registry.forget(self.session_id)  # over for good: no reconnect will want the screen

    # --- teardown -------------------------------------------------------------------------

    async def disconnect(self, code: int) -> None:
        metrics.terminal_closed(self)
        self.closing = True
        await self._release()
        if getattr(self, "recording", False):
            self.recording = False
            await recording.disconnected(self.session_id)
        if self.audited:
            self.audited = False
            from sessions import services

            try:
                await database_sync_to_async(services.session_disconnected)(
                    session_id=self.session_id, user=self.user, origin=self.origin
                )
            except Exception:
                log.exception("terminal %s: audit of the disconnect failed", self.session_id)

    async def _release(self) -> None:
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()
        self.tasks = [t for t in self.tasks if t is current]
        if self.stream is not None:
            stream, self.stream = self.stream, None
            try:
                await stream.close()
            except Exception:  # closing a broken stream may fail again; nothing left to do
                log.debug("closing attach stream failed", exc_info=True)
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            self.group = ""
        await self.leave_access_group()
        terminal = getattr(self, "terminal", None)
        if terminal is not None and terminal.owner is self:
            terminal.owner = None


def _expires_at(session_id: str) -> datetime | None:
    from sessions.models import DebugSession

    return DebugSession.objects.filter(pk=session_id).values_list("expires_at", flat=True).first()


def _end_session_now(*, session_id: str, reason: str) -> None:
    from django.db import connection

    from sessions import services

    try:
        services.session_end(session_id=session_id, actor=None, reason=reason, cluster="background")
    finally:
        connection.close()  # this pool thread is not Django's: don't leave its connection open
