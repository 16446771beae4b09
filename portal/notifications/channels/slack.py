"""Slack: a Block Kit message to an incoming webhook (EPHEMERA_SLACK_WEBHOOK_URL).

Who asks for what (target, profile as a risk, duration, ticket, reason), the rule and how many
approvals are in, and a button that opens the page. No approve button: decisions happen in the
portal, where the approver is signed in (Teleport removed Slack approve buttons for that
reason). Everything a user typed is escaped, so a reason can't mention @channel or hide a link.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from django.conf import settings

from portal.notifications.channels import post
from portal.notifications.constants import Event

if TYPE_CHECKING:
    from portal.notifications.models import Notification

TITLES: dict[str, str] = {
    Event.REQUEST_CREATED: "Debug access requested",
    Event.REQUEST_APPROVED: "Debug access approved",
    Event.REQUEST_DENIED: "Debug access denied",
    Event.REQUEST_EXPIRED: "Debug request expired",
    Event.SESSION_STARTED: "Debug session started",
    Event.SESSION_ENDING_SOON: "Debug session ending soon",
    Event.SESSION_ENDED: "Debug session ended",
    Event.EXTENSION_REQUESTED: "More time requested",
    Event.EXTENSION_DECIDED: "Extension decided",
    Event.OVERSIGHT_FINDING: "Debug access outside Ephemera",
}


def escape(text: Any, limit: int = 1500) -> str:
    """Slack's mrkdwn control characters (&, <, >) as entities: no mentions, no links from user text."""
    raw = str(text if text is not None else "")
    if len(raw) > limit:
        raw = raw[: limit - 1] + "…"
    return raw.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": text[:limit] or " ", "emoji": False}


def _field(label: str, value: Any) -> dict[str, str]:
    return {"type": "mrkdwn", "text": f"*{label}*\n{escape(value, 500)}"}


def message(payload: dict[str, Any]) -> dict[str, Any]:
    event = str(payload.get("event", ""))
    req = payload.get("request") or {}
    policy = req.get("policy") or {}
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(TITLES.get(event, event), 150)},
        {"type": "section", "text": {"type": "mrkdwn", "text": escape(payload.get("message", ""), 2900)}},
    ]
    if req:
        target = f"node/{req.get('node')}" if req.get("kind") == "node" else f"{req.get('namespace')}/{req.get('pod')}:{req.get('container')}"
        if req.get("kind") == "copy":
            target = f"copy of {target}"
        fields = [
            _field("Requester", req.get("requester")),
            _field("Target", target),
            _field("Profile", payload.get("risk") or req.get("profile")),
            _field("Duration", f"{req.get('duration_minutes')} min"),
            _field("Ticket", req.get("ticket") or "none"),
            _field("Rule", f"{policy.get('rule') or 'default'}: {policy.get('approvals', 0)} of {policy.get('approvals_required', 1)} approvals"),
        ]
        if payload.get("extension"):
            fields.append(_field("More time", f"{payload['extension'].get('minutes')} min ({payload['extension'].get('status')})"))
        blocks.append({"type": "section", "fields": fields})
        if req.get("reason") and event in (Event.REQUEST_CREATED, Event.EXTENSION_REQUESTED):
            reason = payload["extension"]["reason"] if event == Event.EXTENSION_REQUESTED and payload.get("extension") else req["reason"]
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "*Reason*\n" + escape(reason, 2800)}})
    label = "Open the request" if event.startswith("request.") else "Open oversight" if event == Event.OVERSIGHT_FINDING else "Open the session"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": escape(f"{payload.get('cluster') or settings.EPHEMERA_CLUSTER_NAME} · {event}")}]})
    blocks.append({"type": "actions", "elements": [{"type": "button", "text": _plain(label, 75), "url": payload.get("url", "")}]})
    return {"text": escape(payload.get("message", ""), 2900), "blocks": blocks}


def send(row: Notification) -> None:
    body = json.dumps(message(row.payload), ensure_ascii=False).encode("utf-8")
    post(settings.EPHEMERA_SLACK_WEBHOOK_URL, body, {})
