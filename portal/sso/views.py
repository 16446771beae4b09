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
from urllib.parse import parse_qs, urlsplit

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

# {state: {"purpose": "reauth" | "silent", "at": epoch seconds, "user": id}}: what a sign-in
# started by a signed-in user is for (a re-authentication, or portal.sso.recheck's re-check).
PURPOSES = "ephemera_sso_purposes"
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
        response: HttpResponse = super().get(request)
        # What this one sign-in is for, under its own state: a re-authentication or a re-check in
        # one tab must not be taken for another started in a second tab.
        purpose = "reauth" if self._reauth(request) else "silent" if self._silent(request) else ""
        if purpose:
            state = parse_qs(urlsplit(response["Location"]).query).get("state", [""])[0]
            purposes = request.session.get(PURPOSES, {})
            purposes = dict(list(purposes.items())[-20:])  # bounded, like the library's states
            purposes[state] = {"purpose": purpose, "at": time.time(), "user": request.user.pk}
            request.session[PURPOSES] = purposes
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
        if self._silent(request):
            return {"prompt": "none"}
        # A sign-in: max_age makes every provider put auth_time in the ID token (when the user
        # last typed their credentials there), which step-up rules read.
        return {"max_age": str(settings.EPHEMERA_SESSION_MAX_AGE_HOURS * 3600)}


class SsoCallback(OIDCAuthenticationCallbackView):
    def get(self, request: HttpRequest) -> HttpResponse:
        if not settings.OIDC_ISSUER:
            raise Http404("single sign-on is not configured")
        state = str(request.GET.get("state", ""))
        states = request.session.get("oidc_states", {})
        if not state or state not in states:
            # Replayed (each state is used once), from another browser, or forged: nothing else
            # in this answer is looked at, an error included.
            return self._refused(request, "this sign-in link was already used or was not started in this browser",
                                 target="unknown state")
        self.purpose = (request.session.get(PURPOSES, {}) or {}).get(state) or {}
        if PURPOSES in request.session:
            request.session[PURPOSES] = {k: v for k, v in request.session[PURPOSES].items() if k != state}
        if request.GET.get("error"):
            del states[state]  # used up, like a successful answer's
            request.session["oidc_states"] = states
            error = str(request.GET.get("error"))[:60]
            if self.purpose.get("purpose") == "silent" and request.user.is_authenticated:
                return self._check_failed(request, error)
            return self._refused(request, f"the identity provider answered {error}: "
                                          f"{str(request.GET.get('error_description', ''))[:200]}".rstrip(": "),
                                 target=f"provider error {error}")
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
        purpose = self.purpose.get("purpose", "")
        if purpose and (not request.user.is_authenticated or request.user != self.user or self.purpose.get("user") != self.user.pk):
            # A re-check or re-authentication that came back as someone else (another account
            # signed in at the provider meanwhile): never switch users silently.
            if request.user.is_authenticated:
                logout(request)
            return self._refused(request, "the identity provider answered for another account than the one signed in here",
                                 target="another account")
        was_signed_in = request.user.is_authenticated and request.user == self.user
        response: HttpResponse = super().login_success()  # logs in (unless already), then redirects
        claims = getattr(request, "sso_claims", {}) or {}
        raw_auth_time = claims.get("auth_time")
        # Never in the future: a provider's clock running ahead must not make a proof last longer.
        auth_time = min(float(raw_auth_time), time.time()) if isinstance(raw_auth_time, (int, float)) else None
        request.session[recheck.CHECKED_AT] = time.time()
        if purpose == "reauth":
            # Re-authentication: only a sign-in the provider made after we asked counts.
            if auth_time is not None and auth_time >= float(self.purpose.get("at", 0)) - _SKEW_SECONDS:
                auth_audit.remember_proof(request, "sso", auth_time)
                with transaction.atomic():
                    record_event(action="auth.reauthenticated", actor=self.user, origin=AuditOrigin.from_request(request),
                                 data={"method": "sso", "auth_time": raw_auth_time})
                messages.success(request, "You signed in again.")
            else:
                messages.error(request, "The identity provider did not ask for your sign-in again, so this does not count "
                                        "as a fresh sign-in (its ID token has no recent auth_time).")
        elif not was_signed_in:
            # Without auth_time nothing says when the credentials were typed: no proof for step-up rules.
            auth_audit.remember_proof(request, "sso", auth_time)
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

    def _refused(self, request: HttpRequest, reason: str, *, target: str = "token") -> HttpResponse:
        # The target is ours, never the provider's words: a flood with varied error texts is still
        # one event per window (portal.attempts).
        record_attempt(action="auth.sso_failed", actor=None, origin=AuditOrigin.from_request(request),
                       target=target, data={"reason": reason})
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
