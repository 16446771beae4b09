"""The profile page: a user turns notification email on or off, and manages their API tokens (portal/token_views.py)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from portal import token_views
from portal.notifications import outbox
from portal.notifications.models import NotificationPreference
from portal.sso.models import SecurityKey
from portal.sso.security_keys import rp_id_of


@login_required
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        # Only the signed-in user's own row: there is no user id in the form to tamper with.
        wants_email = request.POST.get("email") == "on"
        NotificationPreference.objects.update_or_create(user=request.user, defaults={"email": wants_email})
        messages.success(request, "Email notifications are on." if wants_email else "Email notifications are off.")
        return redirect("profile")
    pref = NotificationPreference.objects.filter(user=request.user).values_list("email", flat=True).first()
    return render(request, "portal/profile.html", {
        "email_on": True if pref is None else pref,
        "address": getattr(request.user, "email", ""),
        "email_configured": "email" in outbox.channels(),
        "tokens": token_views.own_tokens(request.user),
        "keys": list(SecurityKey.objects.filter(user=request.user)),
        "key_host": rp_id_of(request),
        "token_max_days": token_views.MAX_DAYS,
        "token_default_days": token_views.DEFAULT_DAYS,
        "now": timezone.now(),
    })
