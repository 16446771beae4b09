"""Refused attempts are audited, rate-limited: one event per kind per window, repeats counted.

What counts as a refusal: any 403 answer to a signed-in user or an anonymous client (a decision,
a recording, an API call; middleware below) and a terminal or watch websocket refused for lack
of rights (sessions' consumers call `record_refusal`). The first refusal of a kind (same action,
same user or, when anonymous, same address, same target) in REPEAT_WINDOW is written to the
audit chain; later ones in that window only bump a counter (portal.models.AuditRepeat), and the
next event of that kind carries `repeats`: how many were folded into it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from channels.db import database_sync_to_async
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from portal.audit import AuditOrigin, record_event
from portal.models import AuditRepeat

REPEAT_WINDOW = timedelta(minutes=10)


def _key(action: str, who: str, target: str) -> str:
    return hashlib.sha256(f"{action}\0{who}\0{target}".encode()).hexdigest()


def record_attempt(*, action: str, actor: Any | None, origin: AuditOrigin, target: str, data: dict[str, Any]) -> bool:
    """Audit this attempt unless one like it was audited within REPEAT_WINDOW. True if an event was written."""
    who = f"user:{actor.pk}" if actor is not None else f"ip:{origin.ip}"
    key = _key(action, who, target[:500])
    now = timezone.now()
    with transaction.atomic():
        row = AuditRepeat.objects.select_for_update().filter(key=key).first()
        if row is None:
            try:
                with transaction.atomic():
                    row = AuditRepeat.objects.create(key=key, action=action, window_ends=now, count=0, last_at=now)
            except IntegrityError:  # a parallel first attempt made it: take its lock
                row = AuditRepeat.objects.select_for_update().get(key=key)
        if row.window_ends > now:
            AuditRepeat.objects.filter(pk=row.pk).update(count=row.count + 1, last_at=now)
            return False
        event_data = dict(data)
        if row.count:
            event_data["repeats"] = row.count
            event_data["repeats_last_at"] = row.last_at.isoformat()
        record_event(action=action, actor=actor, origin=origin, data=event_data)
        AuditRepeat.objects.filter(pk=row.pk).update(count=0, window_ends=now + REPEAT_WINDOW, last_at=now)
        return True


def record_refusal(*, actor: Any | None, origin: AuditOrigin, what: str, target: str, reason: str = "") -> bool:
    data: dict[str, Any] = {"what": what, "target": target[:300]}
    if reason:
        data["reason"] = reason[:300]
    return record_attempt(action="access.refused", actor=actor, origin=origin, target=f"{what}:{target}", data=data)


async def record_refusal_async(*, scope: dict[str, Any], what: str, target: str, reason: str = "") -> None:
    user = scope.get("user")
    actor = user if user is not None and getattr(user, "is_authenticated", False) else None
    await database_sync_to_async(record_refusal)(
        actor=actor, origin=AuditOrigin.from_scope(scope), what=what, target=target, reason=reason
    )


class RefusalAuditMiddleware:
    """Every 403 the portal answers is a refused attempt (after AuthenticationMiddleware)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code == 403 and not getattr(response, "ephemera_audited", False):
            user = getattr(request, "user", None)
            actor = user if user is not None and user.is_authenticated else None
            record_refusal(actor=actor, origin=AuditOrigin.from_request(request), what="http",
                           target=f"{request.method} {request.path}")
        return response
