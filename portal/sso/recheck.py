"""SSO users are re-checked with the provider every OIDC_RECHECK_MINUTES, without a click.

On the first page a signed-in SSO user opens after that time, the portal sends the browser
through the provider with `prompt=none`: a user still signed in there comes straight back (the
groups are synced again on the way); a user the provider disabled, or whose provider session
ended, comes back with an error and is signed out here (`auth.sso_check_failed`), which also
closes their open terminals (portal.access_events). Only page navigations are re-checked: an API
call or a page's own polling can't follow a redirect to the provider.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from portal.auth_audit import AUTH_METHOD, AUTH_TIME

CHECKED_AT = "ephemera_sso_checked_at"  # epoch seconds of the last answer from the provider
_SKIP_PREFIXES = ("/oidc/", "/api/", "/static/", "/logout/", "/login/", "/healthz", "/readyz", "/metrics")


def due(request: HttpRequest, now: float | None = None) -> bool:
    minutes = settings.OIDC_RECHECK_MINUTES
    if not settings.OIDC_ISSUER or not minutes or request.method != "GET" or not request.user.is_authenticated:
        return False
    if request.session.get(AUTH_METHOD) != "sso" or request.path.startswith(_SKIP_PREFIXES):
        return False
    if request.META.get("HTTP_X_EPHEMERA_BACKGROUND") == "1" or "text/html" not in request.META.get("HTTP_ACCEPT", ""):
        return False
    last = request.session.get(CHECKED_AT) or request.session.get(AUTH_TIME) or 0
    return (now if now is not None else time.time()) - float(last) > minutes * 60


class SsoRecheckMiddleware:
    """After SessionTimeoutMiddleware: a due re-check sends the page through the provider."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if due(request):
            query = urlencode({"silent": "1", "next": request.get_full_path()})
            return HttpResponseRedirect(f"{reverse('oidc_authentication_init')}?{query}")
        return self.get_response(request)
