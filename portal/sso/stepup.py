"""Step-up: a rule with `approval_reauth_minutes` wants approvers who proved themselves recently.

`proof_of(request)` says how and when the user of this request last proved who they are (the
session keeps it: portal.auth_audit.AUTH_TIME/AUTH_METHOD); approvals.services checks it against
the rule and writes it into the approval's audit event. An API token proves nothing recent, so
it can't approve under such a rule.

`/reauth/?next=...` gets a fresh proof: SSO users go through the provider with prompt=login and
max_age=0 (portal.sso.views), local users type their password again (throttled like sign-in).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from portal import auth_audit, login_throttle
from portal.audit import AuditOrigin, record_event


@dataclass(frozen=True)
class Proof:
    method: str  # "password" | "sso" | "api_token" | "unknown"
    authenticated_at: float | None  # epoch seconds
    # A security key touched for this very decision (portal.sso.security_keys): its name, and what
    # the challenge named ("request:<id>" or "extension:<id>").
    key: str | None = None
    key_subject: str | None = None

    def fresh_within(self, minutes: int, now: float | None = None) -> bool:
        if self.authenticated_at is None:
            return False
        return (now if now is not None else time.time()) - self.authenticated_at <= minutes * 60

    def as_audit(self) -> dict[str, Any]:
        data: dict[str, Any] = {"method": self.method}
        if self.authenticated_at is not None:
            data["authenticated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.authenticated_at))
        if self.key is not None:
            data["security_key"] = self.key
        return data


UNKNOWN = Proof(method="unknown", authenticated_at=None)


class StepUpRequired(PermissionDenied):
    """The rule wants approvers who signed in within `minutes`; this one's proof is older."""

    def __init__(self, minutes: int, rule: str, proof: Proof) -> None:
        self.minutes = minutes
        how = ("An API token can't prove a recent sign-in: approve in the portal."
               if proof.method == "api_token" else "Sign in again, then approve.")
        super().__init__(f"Rule {rule} asks approvers to have signed in within the last {minutes} minutes. {how}")


class SecurityKeyRequired(PermissionDenied):
    """The rule wants a security key touch naming this very decision."""

    def __init__(self, rule: str, proof: Proof) -> None:
        how = ("An API token can't touch a security key: approve in the portal."
               if proof.method == "api_token" else "Approve in the portal and touch your key when asked.")
        super().__init__(f"Rule {rule} asks for a security key touch with each approval. {how}")


def needs_security_key(snapshot: dict[str, Any] | None) -> bool:
    return bool((snapshot or {}).get("approval_webauthn"))


def check(snapshot: dict[str, Any] | None, proof: Proof, subject: str) -> None:
    """Raise unless `proof` is what the request's rule (its policy snapshot) asks of an approval
    of `subject` ("request:<id>", or "extension:<id>": extending a session is approving more)."""
    snap = snapshot or {}
    minutes = snap.get("approval_reauth_minutes")
    if minutes and not proof.fresh_within(int(minutes)):
        raise StepUpRequired(int(minutes), str(snap.get("rule", "")), proof)
    if needs_security_key(snap) and proof.key_subject != subject:
        raise SecurityKeyRequired(str(snap.get("rule", "")), proof)


def proof_of(request: Any) -> Proof:
    """How the user of this (Django or DRF) request proved themselves, and when."""
    from portal.api_auth import BearerTokenAuthentication

    if isinstance(getattr(request, "successful_authenticator", None), BearerTokenAuthentication):
        return Proof(method="api_token", authenticated_at=None)
    session = getattr(request, "session", None)
    if session is None:
        return UNKNOWN
    at = session.get(auth_audit.AUTH_TIME)
    return Proof(method=str(session.get(auth_audit.AUTH_METHOD) or "unknown"),
                 authenticated_at=float(at) if isinstance(at, (int, float)) else None)


def is_sso_user(user: Any) -> bool:
    return bool(settings.OIDC_ISSUER) and hasattr(user, "sso_identity")


def _safe_next(request: HttpRequest, raw: str) -> str:
    if raw and url_has_allowed_host_and_scheme(raw, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return raw
    return reverse("home")


@login_required
def reauth_view(request: HttpRequest) -> HttpResponse:
    user: Any = request.user  # signed in: login_required
    next_url = _safe_next(request, str(request.POST.get("next") or request.GET.get("next") or ""))
    if is_sso_user(user):
        return HttpResponseRedirect(reverse("oidc_authentication_init") + "?" + urlencode({"reauth": "1", "next": next_url}))
    error = ""
    status = 200
    if request.method == "POST":
        username = user.get_username()
        attempt = login_throttle.begin_login(request=request, username=username)
        if attempt.refused_until is not None:
            error, status = login_throttle.refusal_message(attempt.refused_until), 429
        elif user.check_password(str(request.POST.get("password", ""))):
            login_throttle.login_succeeded(attempt)
            auth_audit.remember_proof(request, "password", time.time())
            with transaction.atomic():
                record_event(action="auth.reauthenticated", actor=user, origin=AuditOrigin.from_request(request),
                             data={"method": "password"})
            messages.success(request, "You confirmed your password.")
            return HttpResponseRedirect(next_url)
        else:
            login_throttle.login_failed(attempt)
            error, status = "That is not your password.", 400
    return render(request, "portal/reauth.html", {"next": next_url, "error": error}, status=status)
