"""Placeholder: the terminal engineer replaces this with the Origin check + cookie/bearer auth stack."""

from channels.auth import AuthMiddlewareStack
from channels.security.websocket import AllowedHostsOriginValidator


def websocket_stack(inner):  # type: ignore[no-untyped-def]
    return AllowedHostsOriginValidator(AuthMiddlewareStack(inner))
