"""Authentication and Origin checks for every websocket of the portal.

A websocket is authenticated by the Django session cookie or by `Authorization: Bearer
<api token>`. Cookies are ambient authority: any page the browser visits could open a
socket that carries them, so a cookie-carrying handshake must come from one of our own
Origins. A bearer-token client without cookies (a CLI, the benchmark) may omit Origin,
since it holds no ambient authority; a present but foreign Origin is refused either way.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http.request import split_domain_port, validate_host

Scope = dict[str, Any]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def origin_allowed(origin: str) -> bool:
    """Is this Origin one of ours: a host in ALLOWED_HOSTS, or listed in EPHEMERA_WS_ALLOWED_ORIGINS?"""
    if origin in settings.EPHEMERA_WS_ALLOWED_ORIGINS:
        return True
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    host, _port = split_domain_port(parts.netloc)
    allowed = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return bool(host) and validate_host(host, allowed)


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
            elif not origin_allowed(origin):
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
    return OriginGuard(AuthMiddlewareStack(BearerTokenMiddleware(inner)))
