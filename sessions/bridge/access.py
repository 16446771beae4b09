"""Who may open a session's terminal: one sync decision, called via database_sync_to_async.

The rules themselves live in portal.permissions (shared with the HTML views and the API);
this only turns them into a websocket close code and a message the user can read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from sessions.bridge import protocol
from sessions.choices import SessionStatus
from sessions.models import DebugSession


@dataclass(frozen=True)
class TerminalAccess:
    session: DebugSession | None
    close_code: int = 0
    message: str = ""

    @property
    def allowed(self) -> bool:
        return self.session is not None and not self.close_code


def terminal_access(*, user: Any, session_id: str) -> TerminalAccess:
    from portal.permissions import can_use_terminal, can_view_request

    if user is None or not user.is_authenticated:
        return TerminalAccess(None, protocol.CLOSE_UNAUTHENTICATED, "Not logged in (or the API token is invalid).")
    session = DebugSession.objects.select_related("request", "request__requester").filter(pk=session_id).first()
    # Users who may not even see the request get the same answer as for a missing session.
    if session is None or not can_view_request(user, session.request):
        return TerminalAccess(None, protocol.CLOSE_NOT_FOUND, "No such session.")
    if can_use_terminal(user, session):
        return TerminalAccess(session)
    if session.request.requester_id != user.pk:
        return TerminalAccess(None, protocol.CLOSE_FORBIDDEN, "Only the engineer who requested this session may use its terminal.")
    if session.status == SessionStatus.PROVISIONING:
        return TerminalAccess(None, protocol.CLOSE_FORBIDDEN, "The debug container is not running yet.")
    if session.status == SessionStatus.RUNNING and session.expires_at and session.expires_at <= timezone.now():
        return TerminalAccess(None, protocol.CLOSE_GONE, "The session's time limit has been reached.")
    return TerminalAccess(None, protocol.CLOSE_GONE, f"The session is {session.get_status_display().lower()}.")
