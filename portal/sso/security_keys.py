"""WebAuthn security keys: registered on the profile page, touched to approve under a rule with
`approval_webauthn: true`.

Each approval gets its own challenge, which names what is approved: b"ephemera-request:" or
b"ephemera-extension:" + its id + 16 random bytes. It is kept in the session for that one decision,
used once and for two minutes at most, so a key touch can't be replayed or moved to another. py_webauthn
checks the rest: the challenge, the origin, the RP id (the portal's host), the signature against
the registered public key, user presence, and a sign counter that must grow.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from portal.audit import AuditOrigin, record_event
from portal.sso.models import SecurityKey

_REGISTRATION = "ephemera_webauthn_registration"  # session: {"challenge": b64, "until": epoch}
_APPROVAL = "ephemera_webauthn_approval"  # session: {"subject": "request:<id>", "challenge": b64, "until": epoch}
CHALLENGE_SECONDS = 120
KINDS = ("request", "extension")
MAX_KEYS = 10
# Adding or removing a key changes what proves the user: it needs a sign-in this recent, or a stolen
# session cookie could add its own key and then pass every approval_webauthn rule.
KEY_CHANGE_REAUTH_MINUTES = 10


class KeyProblem(Exception):
    """The key touch or registration is not accepted; the message says why, for the user."""


def rp_id_of(request: HttpRequest) -> str:
    """The relying party id: the portal's host as the browser addresses it (ALLOWED_HOSTS-checked)."""
    return urlsplit("//" + request.get_host()).hostname or ""


def origin_of(request: HttpRequest) -> str:
    return f"{request.scheme}://{request.get_host()}"


def _json_body(request: HttpRequest) -> dict[str, Any]:
    if len(request.body or b"") > 64 * 1024:
        raise KeyProblem("the browser's answer is too big")
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise KeyProblem("the browser's answer is not JSON") from None
    if not isinstance(body, dict):
        raise KeyProblem("the browser's answer is not a JSON object")
    return body


def _problem(message: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"detail": message}, status=status)


# --- registration (profile page) ---------------------------------------------------------


def _stale(request: HttpRequest) -> bool:
    from portal.sso.stepup import proof_of

    return not proof_of(request).fresh_within(KEY_CHANGE_REAUTH_MINUTES)


def _reauth_url(next_url: str = "/profile/") -> str:
    return f"{reverse('reauth')}?{urlencode({'next': next_url})}"


@login_required
@require_POST
def registration_options(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    if _stale(request):
        return JsonResponse({"detail": f"Adding a security key needs a sign-in of the last {KEY_CHANGE_REAUTH_MINUTES} minutes.",
                             "reauth": _reauth_url()}, status=403)
    keys = list(SecurityKey.objects.filter(user=user))
    if len(keys) >= MAX_KEYS:
        return _problem(f"You have {MAX_KEYS} keys already: remove one first.")
    options = generate_registration_options(
        rp_id=rp_id_of(request),
        rp_name="Ephemera",
        user_name=user.get_username(),
        user_id=str(user.pk).encode(),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=base64url_to_bytes(k.credential_id)) for k in keys],
        authenticator_selection=AuthenticatorSelectionCriteria(resident_key=ResidentKeyRequirement.DISCOURAGED,
                                                               user_verification=UserVerificationRequirement.DISCOURAGED),
    )
    request.session[_REGISTRATION] = {"challenge": bytes_to_base64url(options.challenge), "until": time.time() + CHALLENGE_SECONDS}
    return HttpResponse(options_to_json(options), content_type="application/json")


@login_required
@require_POST
def register(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    pending = request.session.pop(_REGISTRATION, None)
    if _stale(request):
        return JsonResponse({"detail": f"Adding a security key needs a sign-in of the last {KEY_CHANGE_REAUTH_MINUTES} minutes.",
                             "reauth": _reauth_url()}, status=403)
    try:
        body = _json_body(request)
        name = str(body.get("name") or "").strip()
        if not 1 <= len(name) <= 100:
            raise KeyProblem("Give the key a name of 1 to 100 characters.")
        if not pending or pending["until"] < time.time():
            raise KeyProblem("The registration took too long or was not started here: try again.")
        verified = verify_registration_response(
            credential=body.get("credential") or {},
            expected_challenge=base64url_to_bytes(pending["challenge"]),
            expected_rp_id=rp_id_of(request),
            expected_origin=origin_of(request),
        )
    except (KeyProblem, WebAuthnException, ValueError, KeyError, TypeError, AttributeError) as exc:
        return _problem(f"The key was not registered: {exc}")
    credential_id = bytes_to_base64url(verified.credential_id)
    with transaction.atomic():
        if SecurityKey.objects.filter(credential_id=credential_id).exists():
            return _problem("This key is registered already.")
        key = SecurityKey.objects.create(user=user, name=name, credential_id=credential_id,
                                         public_key=verified.credential_public_key, sign_count=verified.sign_count,
                                         rp_id=rp_id_of(request))
        record_event(action="user.security_key_added", actor=user, origin=AuditOrigin.from_request(request),
                     data={"user": user.get_username(), "user_id": user.pk, "key": name, "key_id": key.pk})
    return JsonResponse({"id": key.pk, "name": key.name}, status=201)


@login_required
@require_POST
def remove(request: HttpRequest, key_id: int) -> HttpResponse:
    user: Any = request.user
    if _stale(request):
        messages.info(request, f"Removing a security key needs a sign-in of the last {KEY_CHANGE_REAUTH_MINUTES} minutes.")
        return redirect(_reauth_url())
    with transaction.atomic():
        key = SecurityKey.objects.select_for_update().filter(pk=key_id, user=user).first()
        if key is None:
            raise Http404("No such key of yours.")
        record_event(action="user.security_key_removed", actor=user, origin=AuditOrigin.from_request(request),
                     data={"user": user.get_username(), "user_id": user.pk, "key": key.name, "key_id": key.pk})
        key.delete()
    messages.success(request, f"Security key {key.name} is removed.")
    return redirect("profile")


# --- approvals -----------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyProof:
    subject: str  # "request:<id>" or "extension:<id>"
    key_name: str


def approval_options_for(request: HttpRequest, kind: str, subject_id: uuid.UUID) -> JsonResponse:
    """The challenge for approving this one request or extension (the caller checked the user may decide it)."""
    assert kind in KINDS
    user: Any = request.user
    keys = list(SecurityKey.objects.filter(user=user, rp_id=rp_id_of(request)))
    if not keys:
        raise PermissionDenied("This rule needs a security key touch to approve: register a key on your profile page first.")
    challenge = f"ephemera-{kind}:".encode() + subject_id.bytes + secrets.token_bytes(16)
    options = generate_authentication_options(
        rp_id=rp_id_of(request),
        challenge=challenge,
        allow_credentials=[PublicKeyCredentialDescriptor(id=base64url_to_bytes(k.credential_id)) for k in keys],
        user_verification=UserVerificationRequirement.DISCOURAGED,
        timeout=CHALLENGE_SECONDS * 1000,
    )
    request.session[_APPROVAL] = {"subject": f"{kind}:{subject_id}", "challenge": bytes_to_base64url(challenge),
                                  "until": time.time() + CHALLENGE_SECONDS}
    return JsonResponse(json.loads(options_to_json(options)))


def verify_approval_touch(request: HttpRequest, kind: str, subject_id: uuid.UUID, raw: str) -> KeyProof:
    """Check the key touch posted with an approval; the challenge is used up either way."""
    user: Any = request.user
    subject = f"{kind}:{subject_id}"
    pending = request.session.pop(_APPROVAL, None)
    if not raw:
        raise KeyProblem("This rule needs a security key touch to approve, and none came with the approval.")
    if not pending or pending.get("subject") != subject:
        raise KeyProblem(f"The key touch was not asked for this {kind}: try again.")
    if pending["until"] < time.time():
        raise KeyProblem("The key touch took longer than two minutes: try again.")
    try:
        credential = json.loads(raw)
        if not isinstance(credential, dict):
            raise KeyProblem("The key touch is not a JSON object.")
        key = SecurityKey.objects.filter(user=user, credential_id=str(credential.get("id", ""))).first()
        if key is None:
            raise KeyProblem("That key is not one of yours.")
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=base64url_to_bytes(pending["challenge"]),
            expected_rp_id=rp_id_of(request),
            expected_origin=origin_of(request),
            credential_public_key=bytes(key.public_key),
            credential_current_sign_count=key.sign_count,
        )
    except KeyProblem:
        raise
    except (WebAuthnException, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise KeyProblem(f"The key touch did not verify: {str(exc)[:200]}") from exc
    SecurityKey.objects.filter(pk=key.pk).update(sign_count=verified.new_sign_count, last_used_at=timezone.now())
    return KeyProof(subject=subject, key_name=key.name)
