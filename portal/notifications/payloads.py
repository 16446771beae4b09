"""What a notification says: the event as JSON (the webhook's body), built when it happens.

The shapes are the JSON API's (approvals.serializers.RequestSerializer, SessionSerializer,
ExtensionSerializer), so a receiver parses one format. Built inside the transaction of the
change, from the rows as that transaction sees them: a message sent an hour later (a receiver
was down) still says what was true at the time, not what is true at delivery.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.urls import reverse

from approvals.serializers import RequestSerializer, SessionSerializer
from portal.notifications.constants import Event
from sessions.serializers import ExtensionSerializer

if TYPE_CHECKING:
    from approvals.models import DebugRequest
    from sessions.models import DebugSession, SessionExtension

# Profiles as the risk an approver takes, in a word or two (Slack, email).
RISK = {
    "restricted": "low risk (restricted)",
    "baseline": "low risk (baseline)",
    "general": "elevated: can trace processes (general)",
    "netadmin": "elevated: network admin (netadmin)",
    "sysadmin": "HIGH: privileged (sysadmin)",
}


def link(path: str) -> str:
    """A deep link: EPHEMERA_BASE_URL plus the page's path."""
    return f"{settings.EPHEMERA_BASE_URL}{path}"


def request_url(req: DebugRequest) -> str:
    return link(reverse("request_detail", args=[req.pk]))


def session_url(session: DebugSession) -> str:
    return link(reverse("session_detail", args=[session.pk]))


def risk_of(req: DebugRequest) -> str:
    word = RISK.get(req.profile, req.profile)
    return f"HIGH: the whole node ({word})" if req.kind == "node" else word


def _when(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC" if at else "?"


def _message(event: str, *, req: DebugRequest | None, session: DebugSession | None, ext: SessionExtension | None,
             finding: dict[str, Any] | None, actor: str | None, detail: dict[str, Any]) -> str:
    """One line a person reads first (the Slack text, the email's subject line)."""
    if event == Event.OVERSIGHT_FINDING and finding is not None:
        where = f"{finding.get('namespace')}/{finding.get('pod')}" + (f":{finding['container']}" if finding.get("container") else "")
        return f"Oversight: {str(finding.get('kind', '')).replace('_', ' ')} {where}"
    assert req is not None
    who, what = req.requester.get_username(), req.target_label
    by = f" by {actor}" if actor else ""
    comment = detail.get("comment") or ""
    if event == Event.REQUEST_CREATED:
        return f"{who} asks for a debug shell on {what} ({req.profile}, {req.duration_minutes} min)"
    if event == Event.REQUEST_APPROVED:
        return f"{who}'s request for {what} was approved{by or ' by policy'}"
    if event == Event.REQUEST_DENIED:
        return f"{who}'s request for {what} was denied{by}" + (f": {comment}" if comment else "")
    if event == Event.REQUEST_EXPIRED:
        return f"{who}'s request for {what} expired without a decision"
    if event == Event.SESSION_STARTED:
        return f"{who}'s debug session on {what} is ready" + (f" (until {_when(session.expires_at)})" if session and session.clock_started_at else "")
    if event == Event.SESSION_ENDING_SOON:
        return f"{who}'s debug session on {what} ends at {_when(session.expires_at if session else None)}"
    if event == Event.SESSION_ENDED:
        return f"{who}'s debug session on {what} ended: {detail.get('reason') or 'over'}"
    if event == Event.EXTENSION_REQUESTED and ext is not None:
        return f"{who} asks for {ext.minutes} more minutes on {what}: {ext.reason}"
    if event == Event.EXTENSION_DECIDED and ext is not None:
        return f"{ext.minutes} more minutes for {who}'s session on {what}: {ext.status}{by}" + (f" ({comment})" if comment else "")
    return f"{event}: {what}"


def build(
    event: str,
    *,
    occurred_at: datetime,
    request: DebugRequest | None = None,
    session: DebugSession | None = None,
    extension: SessionExtension | None = None,
    finding: dict[str, Any] | None = None,
    actor: Any = None,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The event's JSON, without `id` (each delivery adds its own). `finding` is an oversight
    finding as the oversight webhook shows it (sessions.oversight.payload)."""
    detail = dict(detail or {})
    actor_name = actor.get_username() if actor is not None else None
    if session is None and request is not None and event.startswith(("session.", "extension.")):
        session = getattr(request, "session", None)
    if event == Event.OVERSIGHT_FINDING:
        url = link(reverse("oversight"))
    elif session is not None and not event.startswith("request."):
        url = session_url(session)
    elif request is not None:
        url = request_url(request)
    else:
        url = settings.EPHEMERA_BASE_URL + "/"
    body: dict[str, Any] = {
        "event": event,
        "occurred_at": occurred_at.isoformat(),
        "url": url,
        "cluster": settings.EPHEMERA_CLUSTER_NAME,
        "message": _message(event, req=request, session=session, ext=extension, finding=finding, actor=actor_name, detail=detail),
        "actor": actor_name,
        "request": RequestSerializer(request).data if request is not None else None,
        "session": SessionSerializer(session).data if session is not None else None,
    }
    if extension is not None:
        body["extension"] = ExtensionSerializer(extension).data
    if finding is not None:
        body["finding"] = finding
    if request is not None:
        body["risk"] = risk_of(request)
    if detail:
        body["detail"] = detail
    # Exactly what the JSON column stores and reads back (UUIDs, datetimes as strings).
    return json.loads(json.dumps(body, default=str))
