"""Who is acting, for audit events raised far from any view (model signals): the HTTP request's user.

`AuditActorMiddleware` remembers the request for the duration of its view in a contextvar,
not a thread-local: it follows the request through asgiref's thread hops under Daphne and
never leaks into a concurrent request. Outside a request (manage.py, the reaper, a shell)
nothing is set and the actor is the system.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from django.http import HttpRequest, HttpResponse

from portal.audit import AuditOrigin

_request: ContextVar[HttpRequest | None] = ContextVar("ephemera_audit_request", default=None)


def current_actor() -> tuple[Any | None, AuditOrigin | None]:
    """(the logged-in user making the current HTTP request, where it came from); (None, None) for the system."""
    request = _request.get()
    if request is None:
        return None, None
    # Read at the time of the event, not when the request came in: request.user is lazy.
    user = getattr(request, "user", None)
    actor = user if user is not None and user.is_authenticated else None
    return actor, AuditOrigin.from_request(request)


class AuditActorMiddleware:
    """Makes the request's user the actor of audit events its view causes. After AuthenticationMiddleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)
