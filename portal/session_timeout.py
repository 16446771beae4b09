"""Web sessions end EPHEMERA_SESSION_MAX_AGE_HOURS after sign-in, or after EPHEMERA_SESSION_IDLE_MINUTES idle.

Django's SESSION_COOKIE_AGE alone slides: each session save moves the expiry. So the sign-in
time and the last activity are kept in the session, and `SessionTimeoutMiddleware` signs the
user out on the first request past either limit.

Activity is a page or API request made by the user. Requests the pages make on their own
(polling a request's status) carry `X-Ephemera-Background: 1` and do not count, or an open
tab would keep a session alive forever. Websocket traffic does not count either; a handshake
with a timed-out session is anonymous (`SessionTimeoutGuard`), a socket already open stays.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.signals import user_logged_in
from django.contrib.sessions.backends.base import SessionBase
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse

SIGNED_IN_AT = "ephemera_signed_in_at"
LAST_ACTIVE_AT = "ephemera_last_active_at"
BACKGROUND_HEADER = "HTTP_X_EPHEMERA_BACKGROUND"
# Record activity at most once a minute: a session write per request would cost a database
# write per click, and a minute is nothing against an idle limit counted in minutes.
_TOUCH_EVERY = 60.0


@receiver(user_logged_in, dispatch_uid="ephemera-session-signed-in")
def _signed_in(sender: Any, request: HttpRequest | None, **kwargs: Any) -> None:
    if request is not None and hasattr(request, "session"):
        now = time.time()
        request.session[SIGNED_IN_AT] = now
        request.session[LAST_ACTIVE_AT] = now


def timed_out(session: SessionBase, now: float | None = None) -> str | None:
    """Why this signed-in session is over ("idle", "max_age"), or None while it is valid."""
    now = time.time() if now is None else now
    signed_in = session.get(SIGNED_IN_AT)
    last_active = session.get(LAST_ACTIVE_AT)
    if isinstance(signed_in, int | float) and now - signed_in > settings.EPHEMERA_SESSION_MAX_AGE_HOURS * 3600:
        return "max_age"
    if isinstance(last_active, int | float) and now - last_active > settings.EPHEMERA_SESSION_IDLE_MINUTES * 60:
        return "idle"
    return None


class SessionTimeoutMiddleware:
    """After AuthenticationMiddleware: signs out timed-out sessions, records activity."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            session = request.session
            now = time.time()
            reason = timed_out(session, now)
            if reason is not None:
                logout(request)
                if reason == "idle":
                    text = f"You were signed out after {settings.EPHEMERA_SESSION_IDLE_MINUTES} minutes without activity."
                else:
                    text = f"You were signed out {settings.EPHEMERA_SESSION_MAX_AGE_HOURS} hours after signing in."
                messages.info(request, text)
            else:
                # A session from before these keys existed (or force_login) starts counting now.
                if not isinstance(session.get(SIGNED_IN_AT), int | float):
                    session[SIGNED_IN_AT] = now
                last_active = session.get(LAST_ACTIVE_AT)
                background = request.META.get(BACKGROUND_HEADER) == "1"
                if not isinstance(last_active, int | float) or (not background and now - last_active >= _TOUCH_EVERY):
                    session[LAST_ACTIVE_AT] = now
        return self.get_response(request)


@database_sync_to_async
def _session_timed_out(session: SessionBase) -> bool:
    return timed_out(session) is not None


class SessionTimeoutGuard:
    """ASGI, inside channels' AuthMiddlewareStack: a timed-out session's handshake is anonymous.

    It never records activity: websocket traffic does not keep a session alive.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        session = scope.get("session")
        if session is not None and await _session_timed_out(session):
            scope = dict(scope, user=AnonymousUser())
        return await self.inner(scope, receive, send)
