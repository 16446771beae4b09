"""Sign-ins and sign-outs are audit events, and how each user proved themselves is kept.

`auth.login` says the method (password or sso); a password sign-in while EPHEMERA_LOCAL_LOGIN=0
is break-glass: its event says so and it becomes an oversight finding (sessions.models.Finding),
so it is notified like any access that bypassed the normal way in. `auth.logout` closes the pair.
Failed password sign-ins are audited by portal.login_throttle, failed SSO logins by portal.sso.views.

The session remembers when and how the user last proved who they are (`AUTH_TIME`, `AUTH_METHOD`):
a policy rule with `approval_reauth_minutes` reads it (portal.sso.stepup).
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.db import transaction
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils import timezone

from portal.audit import AuditOrigin, record_event

AUTH_TIME = "ephemera_auth_time"  # epoch seconds of the last proof (sign-in or re-authentication)
AUTH_METHOD = "ephemera_auth_method"  # "password" | "sso"
_SSO_BACKEND = "portal.sso.backend.SsoBackend"


def method_of(user: Any) -> str:
    return "sso" if getattr(user, "backend", "") == _SSO_BACKEND else "password"


def remember_proof(request: HttpRequest, method: str, at: float | None = None) -> None:
    """`at` None: when the credentials were typed is unknown (no proof for step-up rules)."""
    request.session[AUTH_TIME] = at
    request.session[AUTH_METHOD] = method


@receiver(user_logged_in, dispatch_uid="ephemera-auth-audit-login")
def _logged_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    method = method_of(user)
    break_glass = method == "password" and not settings.EPHEMERA_LOCAL_LOGIN
    origin = AuditOrigin.from_request(request) if request is not None else None
    if request is not None and hasattr(request, "session"):
        remember_proof(request, method, time.time())
    data: dict[str, Any] = {"method": method}
    if break_glass:
        data["break_glass"] = True
    with transaction.atomic():
        event = record_event(action="auth.login", actor=user, origin=origin, data=data)
        if break_glass:
            _break_glass_finding(user, event.pk, origin)


def _break_glass_finding(user: Any, event_id: int, origin: AuditOrigin | None) -> None:
    from sessions.models import Finding

    now = timezone.now()
    Finding.objects.create(
        key=f"break-glass-login:{event_id}",
        kind="break_glass_login",
        detail={"user": user.get_username(), "ip": origin.ip if origin else None, "audit_event": event_id},
        first_seen_at=now,
        last_seen_at=now,
        gone_at=now,  # an event, not a thing in the cluster: nothing for the scan to watch
    )


@receiver(user_logged_out, dispatch_uid="ephemera-auth-audit-logout")
def _logged_out(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if user is None:
        return
    origin = AuditOrigin.from_request(request) if request is not None else None
    with transaction.atomic():
        record_event(action="auth.logout", actor=user, origin=origin, data={})
