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

import io
from typing import Any

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIRequest

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


@database_sync_to_async
def _user_for_token(raw: str) -> Any:
    from portal.tokens import user_for_token

    return user_for_token(raw) or AnonymousUser()


class BearerTokenMiddleware:
    """Sets scope["user"] from a bearer token; without one, leaves the cookie's user."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> Any:
        raw = _bearer(scope)
        if raw is not None:
            # A bad token is anonymous, never a fallback to the cookie: the client asked to
            # be that token's user. The consumer then closes with 4401.
            scope = dict(scope, user=await _user_for_token(raw) if raw else AnonymousUser())
        return await self.inner(scope, receive, send)


def websocket_stack(inner: Any) -> Any:
    # SessionTimeoutGuard: a timed-out session's cookie is anonymous here too.
    return OriginGuard(AuthMiddlewareStack(SessionTimeoutGuard(BearerTokenMiddleware(inner))))
