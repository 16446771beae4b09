"""The two ends of the OpenID Connect code flow: /oidc/authenticate/ and /oidc/callback/.

mozilla-django-oidc builds the request (state, nonce, PKCE S256 verifier, all kept in the
session per state) and finishes it; these subclasses take the endpoints from discovery, ask the
provider for a fresh sign-in when re-authenticating (`?reauth=1`: prompt=login, max_age=0), and
turn every refusal into an audit event and a page that says why, instead of a bare redirect.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import requests
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.core.exceptions import SuspiciousOperation
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from portal import auth_audit
from portal.attempts import record_attempt
from portal.audit import AuditOrigin, record_event
from portal.sso import discovery, recheck
from portal.sso.groups import GroupsClaimError

log = logging.getLogger(__name__)

REAUTH_STARTED = "ephemera_sso_reauth_started"  # epoch seconds: when this user was sent to sign in again
SILENT_CHECK = "ephemera_sso_silent_check"  # a prompt=none re-check is under way (portal.sso.recheck)
_SKEW_SECONDS = 60


def _unavailable(request: HttpRequest, exc: Exception) -> HttpResponse:
    log.warning("single sign-on unavailable: %s", exc)
    return render(request, "portal/sso_failed.html",
                  {"reason": "The identity provider cannot be reached right now. Try again in a minute."}, status=503)


class SsoStart(OIDCAuthenticationRequestView):
    def __init__(self, *args: Any, **kwargs: Any) -> None:  # the library's reads endpoint settings we don't have
        super(OIDCAuthenticationRequestView, self).__init__(*args, **kwargs)
        self.OIDC_RP_CLIENT_ID = settings.OIDC_CLIENT_ID

    def get(self, request: HttpRequest) -> HttpResponse:
        if not settings.OIDC_ISSUER:
            raise Http404("single sign-on is not configured")
        try:
            self.OIDC_OP_AUTH_ENDPOINT = discovery.provider().authorization_endpoint
        except discovery.DiscoveryError as exc:
            return _unavailable(request, exc)
        if self._reauth(request):
            request.session[REAUTH_STARTED] = time.time()
        elif self._silent(request):
            request.session[SILENT_CHECK] = True
        response: HttpResponse = super().get(request)
        return response

    @staticmethod
    def _silent(request: HttpRequest) -> bool:
        return request.GET.get("silent") == "1" and request.user.is_authenticated

    @staticmethod
    def _reauth(request: HttpRequest) -> bool:
        return request.GET.get("reauth") == "1" and request.user.is_authenticated

    def get_extra_params(self, request: HttpRequest) -> dict[str, str]:
        # A step-up: the provider must ask for the credentials again and say when (auth_time).
        if self._reauth(request):
            return {"prompt": "login", "max_age": "0"}
        # A re-check: the provider answers at once, without a page, whether the user is still in.
        return {"prompt": "none"} if self._silent(request) else {}


class SsoCallback(OIDCAuthenticationCallbackView):
    def get(self, request: HttpRequest) -> HttpResponse:
        if not settings.OIDC_ISSUER:
            raise Http404("single sign-on is not configured")
        silent = bool(request.session.pop(SILENT_CHECK, False))
        if request.GET.get("error"):
            error = str(request.GET.get("error"))[:60]
            if silent and request.user.is_authenticated:
                return self._check_failed(request, error)
            return self._refused(request, f"the identity provider answered {error}: "
                                          f"{str(request.GET.get('error_description', ''))[:200]}".rstrip(": "))
        state = request.GET.get("state", "")
        if not state or state not in request.session.get("oidc_states", {}):
            # Replayed (each state is used once), from another browser, or forged.
            return self._refused(request, "this sign-in link was already used or was not started in this browser")
        self.reauth_started = request.session.get(REAUTH_STARTED)
        try:
            response: HttpResponse = super().get(request)
        except discovery.DiscoveryError as exc:
            return _unavailable(request, exc)
        except (SuspiciousOperation, GroupsClaimError, requests.RequestException, KeyError, ValueError) as exc:
            return self._refused(request, _reason(exc))
        return response

    def login_failure(self) -> HttpResponse:
        return self._refused(self.request, getattr(self.request, "sso_refusal", "") or "the identity provider did not sign you in")

    def login_success(self) -> HttpResponse:
        request = self.request
        was_signed_in = request.user.is_authenticated and request.user == self.user
        response: HttpResponse = super().login_success()  # logs in (unless already), then redirects
        claims = getattr(request, "sso_claims", {}) or {}
        auth_time = claims.get("auth_time")
        request.session[recheck.CHECKED_AT] = time.time()
        started = request.session.pop(REAUTH_STARTED, None)
        if started is not None:
            # Re-authentication: only a sign-in the provider made after we asked counts.
            if isinstance(auth_time, (int, float)) and auth_time >= float(started) - _SKEW_SECONDS:
                auth_audit.remember_proof(request, "sso", float(auth_time))
                with transaction.atomic():
                    record_event(action="auth.reauthenticated", actor=self.user, origin=AuditOrigin.from_request(request),
                                 data={"method": "sso", "auth_time": auth_time})
                messages.success(request, "You signed in again.")
            else:
                messages.error(request, "The identity provider did not ask for your sign-in again, so this does not count "
                                        "as a fresh sign-in (its ID token has no recent auth_time).")
        elif not was_signed_in:
            proof_at = float(auth_time) if isinstance(auth_time, (int, float)) else time.time()
            auth_audit.remember_proof(request, "sso", min(proof_at, time.time()))
        return response

    def _check_failed(self, request: HttpRequest, error: str) -> HttpResponse:
        """The provider no longer vouches for this signed-in user: sign them out here too."""
        user = request.user
        with transaction.atomic():
            record_event(action="auth.sso_check_failed", actor=user, origin=AuditOrigin.from_request(request),  # type: ignore[arg-type]
                         data={"error": error})
        logout(request)  # also closes their open websockets (portal.access_events)
        messages.info(request, f"Your sign-in at {settings.OIDC_PROVIDER_NAME} has ended ({error}): sign in again.")
        return redirect("login")

    def _refused(self, request: HttpRequest, reason: str) -> HttpResponse:
        record_attempt(action="auth.sso_failed", actor=None, origin=AuditOrigin.from_request(request),
                       target=reason[:100], data={"reason": reason})
        request.session.pop(REAUTH_STARTED, None)
        response = render(request, "portal/sso_failed.html", {"reason": reason}, status=403)
        response.ephemera_audited = True  # type: ignore[attr-defined]  # not again as access.refused
        return response


def _reason(exc: Exception) -> str:
    if isinstance(exc, (SuspiciousOperation, GroupsClaimError)):
        return str(exc)
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"the identity provider refused the exchange (HTTP {exc.response.status_code})"
    if isinstance(exc, requests.RequestException):
        return "the identity provider could not be reached"
    return f"the identity provider's answer is malformed ({type(exc).__name__})"
