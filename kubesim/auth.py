"""Bearer-token authentication and a tiny RBAC: enough for real 401s and 403s."""

from __future__ import annotations

import base64
import binascii
import hmac

from aiohttp import web

from kubesim.errors import forbidden_access, unauthorized
from kubesim.routing import RequestInfo
from kubesim.state import User


class Authenticator:
    def __init__(self, users: list[User], anonymous: User | None = None) -> None:
        self._users = users
        # --plain-http only: kubectl never sends a bearer token over plain HTTP, so a request
        # without any Authorization header is served as `anonymous` (a wrong token is still a 401).
        self._anonymous = anonymous

    def authenticate(self, request: web.Request) -> User:
        header = request.headers.get("Authorization", "")
        token = _websocket_token(request) if not header else ""
        if not header and not token and self._anonymous is not None:
            return self._anonymous
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer":
                raise unauthorized()
        if not token:
            raise unauthorized()
        for user in self._users:
            # Constant-time compare: the token is the only credential.
            if hmac.compare_digest(user.token.encode(), token.strip().encode()):
                return user
        raise unauthorized()


WS_TOKEN_PREFIX = "base64url.bearer.authorization.k8s.io."  # noqa: S105 - a prefix, not a secret


def _websocket_token(request: web.Request) -> str:
    """Browsers can't set headers on websockets; the apiserver accepts the token as a subprotocol."""
    for proto in request.headers.get("Sec-WebSocket-Protocol", "").split(","):
        proto = proto.strip()
        if proto.startswith(WS_TOKEN_PREFIX):
            encoded = proto[len(WS_TOKEN_PREFIX) :]
            try:
                return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
            except (binascii.Error, UnicodeDecodeError):
                return ""
    return ""


def authorize(user: User, info: RequestInfo, method: str) -> None:
    if not info.is_resource:
        return
    resource = f"{info.resource}/{info.subresource}" if info.subresource else info.resource
    verbs = [info.verb]
    # A websocket attach/exec is a GET, but since 1.35 the apiserver also demands `create`.
    if info.subresource in ("attach", "exec", "portforward") and method == "GET":
        verbs = ["get", "create"]
    for verb in verbs:
        if not user.allows(verb, resource, info.namespace):
            raise forbidden_access(user.name, verb, info.resource, info.subresource, info.name, info.namespace)
