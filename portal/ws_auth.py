"""Authentication and Origin checks for every websocket of the portal.

A websocket is authenticated by the Django session cookie or by `Authorization: Bearer
<api token>`. Cookies are ambient authority: any page the browser visits could open a
socket that carries them, so a cookie-carrying handshake must come from one of our own
Origins. A bearer-token client without cookies (a CLI, the benchmark) may omit Origin,
since it holds no ambient authority; a present but foreign Origin is refused either way.

"Our own" is decided as Django's CSRF check decides it for a POST: scheme, host and port
exactly. A page on another port or scheme of the same host is another origin (another
program, often another user's) and must not drive a terminal with the cookie.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest

from portal.session_timeout import SessionTimeoutGuard

Scope = dict[str, Any]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def own_origin(scope: Scope) -> str | None:
    """The origin the handshake itself was sent to ("https://host:port"), or None if its Host is not ours.

    Built the way Django builds it for an HTTP request: the Host header (with its port)
    checked against ALLOWED_HOSTS, and the scheme from the server ("wss" is https) unless
    SECURE_PROXY_SSL_HEADER says a TLS proxy in front has the final word.
    """
    http_scheme = "https" if scope.get("scheme") in ("wss", "https") else "http"
    # ASGIRequest reads only the scope (no body for a GET); it gives us Django's own
    # get_host()/is_secure() rather than a copy of their rules.
    request = ASGIRequest(dict(scope, method="GET", scheme=http_scheme), io.BytesIO())
    try:
        host = request.get_host()
    except DisallowedHost:
        return None
    return f"{'https' if request.is_secure() else 'http'}://{host}"


def origin_allowed(origin: str, scope: Scope) -> bool:
    """Is `origin` exactly the portal's own origin for this handshake, or listed in settings?

    Listed means an exact entry of CSRF_TRUSTED_ORIGINS or EPHEMERA_WS_ALLOWED_ORIGINS
    (wildcard CSRF entries are not honoured here: a websocket origin is named in full).
    """
    if origin in settings.EPHEMERA_WS_ALLOWED_ORIGINS or origin in settings.CSRF_TRUSTED_ORIGINS:
        return True
    own = own_origin(scope)
    return own is not None and origin == own


def _bearer(scope: Scope) -> str | None:
    auth = _header(scope, b"authorization")
    if auth and auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return None


class OriginGuard:
    """Refuses the handshake (HTTP 403) for a foreign Origin, or a cookie without any Origin."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket":
            origin = _header(scope, b"origin")
            has_cookie = _header(scope, b"cookie") is not None
            if origin is None:
                if has_cookie or _bearer(scope) is None:
                    return await WebsocketDenier()(scope, receive, send)
            elif not origin_allowed(origin, scope):
                return await WebsocketDenier()(scope, receive, send)
        return await self.inner(scope, receive, send)


TOKEN_ID = "ephemera_token_id"  # noqa: S105  (a scope key: the id of the API token the handshake used)


@database_sync_to_async
def _token_login(raw: str) -> tuple[Any, int | None]:
    from portal.tokens import token_login

    login = token_login(raw) if raw else None
    return login if login is not None else (AnonymousUser(), None)


class BearerTokenMiddleware:
    """Sets scope["user"] (and scope[TOKEN_ID]) from a bearer token; without one, leaves the cookie's user."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        raw = _bearer(scope)
        if raw is not None:
            # A bad token is anonymous, never a fallback to the cookie: the client asked to
            # be that token's user. The consumer then closes with 4401.
            user, token_id = await _token_login(raw)
            scope = dict(scope, user=user, **{TOKEN_ID: token_id})
        return await self.inner(scope, receive, send)


# --- open connections follow revocations -------------------------------------------------


@dataclass(frozen=True)
class Credential:
    """What an open websocket authenticated with: an API token, or a login session."""

    user_id: int | None
    token_id: int | None = None
    session_key: str | None = None

    @classmethod
    def of(cls, scope: Scope) -> Credential:
        user = scope.get("user")
        if user is None or not user.is_authenticated:
            return cls(user_id=None)
        if scope.get(TOKEN_ID) is not None:
            return cls(user_id=user.pk, token_id=scope[TOKEN_ID])
        session = scope.get("session")
        return cls(user_id=user.pk, session_key=getattr(session, "session_key", None))

    def session_hash(self) -> str:
        return session_key_hash(self.session_key) if self.session_key else ""


def session_key_hash(key: str) -> str:
    """How a login session is named in channel-layer messages: never the key itself (it is the cookie)."""
    return hashlib.sha256(key.encode()).hexdigest()


def credential_problem(credential: Credential) -> tuple[Any, str]:
    """(the user this credential still authenticates, fresh from the database, "") or (None, why not).

    Sync (database). A token must still be unrevoked and its user active; a login session
    must still exist, be that user's, match their password (Django's session hash) and not
    have timed out.
    """
    from django.contrib.auth import get_user, get_user_model

    from portal.session_timeout import timed_out
    from portal.tokens import token_problem

    if credential.user_id is None:
        return None, "Not logged in (or the API token is invalid)."
    if credential.token_id is not None:
        problem = token_problem(credential.token_id)
        return (None, problem) if problem else (get_user_model()._default_manager.get(pk=credential.user_id), "")
    if not credential.session_key:
        return None, "You were signed out."
    request = HttpRequest()
    request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key=credential.session_key)
    user = get_user(request)  # None/anonymous for a deleted session, an inactive user, a changed password
    if user.is_authenticated and user.pk == credential.user_id and timed_out(request.session) is None:
        return user, ""
    if get_user_model()._default_manager.filter(pk=credential.user_id, is_active=False).exists():
        return None, "Your account was deactivated."
    return None, "You were signed out."


class LiveAccessMixin:
    """For websocket consumers: re-check access each time the user's access changes.

    `join_access_group()` on connect, before the consumer's own access check (a change from
    then on is heard); `portal.access_events.access_changed(user_id)` then reaches
    `access_changed` here, which asks `access_problem` (credential, then the consumer's own
    permission check) and hands a failure to `access_revoked`, where the consumer closes the
    socket its usual way with 4403 and the reason.
    """

    scope: Any  # as the consumer base classes have it
    channel_layer: Any
    channel_name: str
    credential: Credential = Credential(user_id=None)
    _access_group: str = ""

    async def join_access_group(self) -> None:
        from portal.access_events import user_group

        self.credential = Credential.of(self.scope)
        if self.credential.user_id is not None and not self._access_group:
            self._access_group = user_group(self.credential.user_id)
            await self.channel_layer.group_add(self._access_group, self.channel_name)

    async def leave_access_group(self) -> None:
        if self._access_group:
            group, self._access_group = self._access_group, ""
            await self.channel_layer.group_discard(group, self.channel_name)

    async def access_changed(self, event: dict[str, Any]) -> None:
        """Group message "access.changed": a credential or role of this user changed."""
        if not self._access_group:
            return
        ended = event.get("ended_session")
        if ended and ended == self.credential.session_hash():
            # This very login is being signed out (the signal comes before the session is deleted).
            problem = "You were signed out."
        else:
            problem = await database_sync_to_async(self.access_problem)()
        if problem:
            await self.access_revoked(problem)

    def credential_user(self) -> tuple[Any, str]:
        """Sync, for the consumer's connect-time check: (the user to check, "") or (None, why the
        handshake's credential no longer holds: revoked between the handshake and now)."""
        if self.credential.user_id is None:
            return self.scope.get("user"), ""  # anonymous: the consumer's own check refuses it
        return credential_problem(self.credential)

    def access_problem(self) -> str:
        """Sync: why this connection may no longer stay open ("" if it may)."""
        user, problem = credential_problem(self.credential)
        return problem if user is None else self.permission_problem(user)

    def permission_problem(self, user: Any) -> str:
        """Sync: the consumer's own permission check, for a freshly loaded user ("" if allowed)."""
        raise NotImplementedError

    async def access_revoked(self, message: str) -> None:
        raise NotImplementedError


def websocket_stack(inner: Any) -> Any:
    # SessionTimeoutGuard: a timed-out session's cookie is anonymous here too.
    return OriginGuard(AuthMiddlewareStack(SessionTimeoutGuard(BearerTokenMiddleware(inner))))
