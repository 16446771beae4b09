"""Self-service API tokens on the profile page: create (named, expiring), see once, list, revoke.

A user sees and revokes their own tokens; admins see and revoke everyone's (/tokens/). The token
is shown once, in the answer to the form that made it, and never stored, logged or put in a
session: only its SHA-256 is kept (portal.tokens). Issuing and revoking are audit events
(portal.role_audit).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from portal import permissions
from portal.models import ApiToken
from portal.tokens import create_token, revoke_token

MAX_DAYS = 90
DEFAULT_DAYS = 30


def own_tokens(user: Any) -> list[ApiToken]:
    return list(ApiToken.objects.filter(user=user, revoked_at__isnull=True).order_by("-created_at"))


def _form_error(name: str, days_raw: str) -> tuple[str, int]:
    """(error, days): the form's values checked; error is "" when they are fine."""
    if not name or len(name) > 100:
        return "Give the token a name of 1 to 100 characters (what it is for).", 0
    try:
        days = int(days_raw)
    except ValueError:
        return f"Expiry: a whole number of days from 1 to {MAX_DAYS}.", 0
    if not 1 <= days <= MAX_DAYS:
        return f"Expiry: a whole number of days from 1 to {MAX_DAYS}.", 0
    return "", days


@login_required
@require_POST
def token_create(request: HttpRequest) -> HttpResponse:
    name = str(request.POST.get("name", "")).strip()
    error, days = _form_error(name, str(request.POST.get("days", "")).strip())
    if error:
        messages.error(request, error)
        return redirect("profile")
    expires_at = timezone.now() + timedelta(days=days)
    raw = create_token(request.user, name=name, expires_at=expires_at)
    # Rendered, not redirected: the token must not go through a session or a URL.
    response = render(request, "portal/token_created.html", {"token": raw, "name": name, "expires_at": expires_at})
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    token = ApiToken.objects.select_related("user").filter(pk=token_id).first()
    if token is None:
        raise Http404("No such token.")
    if token.user_id != request.user.pk and not permissions.is_admin(request.user):
        raise PermissionDenied("Only its owner or an admin may revoke a token.")
    revoke_token(token.pk)
    messages.success(request, f"Token {token.name or token.prefix} of {token.user.get_username()} is revoked.")
    return redirect("tokens_all" if request.POST.get("next") == "all" else "profile")


@login_required
@require_GET
def tokens_all(request: HttpRequest) -> HttpResponse:
    if not permissions.is_admin(request.user):
        raise PermissionDenied("Only admins see everyone's API tokens.")
    tokens = ApiToken.objects.select_related("user").filter(revoked_at__isnull=True).order_by("user__username", "-created_at")
    return render(request, "portal/tokens_all.html", {"tokens": tokens, "now": timezone.now()})
