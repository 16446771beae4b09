"""Audit events in words, for people: a sentence, and the event's details as labelled fields.

The stored event stays what it is (action, actor, data; portal.audit hashes it); this only says
it. An action without a sentence here still reads: its name in words, its data as fields.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# What each action says; {actor} is who did it ("Ephemera" for the system).
SENTENCES: dict[str, str] = {
    "request.created": "{actor} asked for debug access",
    "request.approval_recorded": "{actor} approved",
    "request.approved": "The request was approved",
    "request.denied": "{actor} denied the request",
    "request.cancelled": "{actor} withdrew the request",
    "request.expired": "The request expired without a decision",
    "session.created": "The session was created",
    "session.provisioned": "Ephemera started the debug container",
    "session.clock_started": "The session's time started at {actor}'s first connect",
    "session.connected": "{actor} opened the terminal",
    "session.disconnected": "The terminal was closed",
    "session.watched": "{actor} watched the session live",
    "session.extension_requested": "{actor} asked for more time",
    "session.extended": "{actor} extended the session",
    "session.extension_denied": "{actor} denied more time",
    "session.extension_cancelled": "The extension request was cancelled",
    "session.ended": "The session ended",
    "session.failed": "The session failed",
    "session.stop_failed": "Stopping the debug container in the cluster failed (retried)",
    "session.cluster_clean": "The cluster side was cleaned up",
    "session.node_pod_deleted": "Ephemera deleted the node-debugger pod",
    "session.recording_viewed": "{actor} viewed the recording",
    "session.reviewed": "{actor} marked the session reviewed",
    "session.file_started": "{actor} started a file transfer",
    "session.file_downloaded": "{actor} downloaded a file",
    "session.file_uploaded": "{actor} uploaded a file",
    "session.file_failed": "A file transfer failed",
    "session.file_refused": "A file transfer was refused",
    "session.file_viewed": "{actor} opened a transferred file",
    "policy.loaded": "A new approval policy came into force",
    "auth.login": "{actor} signed in",
    "auth.logout": "{actor} signed out",
    "auth.reauthenticated": "{actor} signed in again (step-up)",
    "auth.sso_failed": "A single sign-on was refused",
    "auth.sso_check_failed": "{actor}'s sign-in ended at the identity provider",
    "access.refused": "{actor} was refused",
}

# Data keys shown under other names; keys not listed read as words ("expires_at" -> "Expires at").
LABELS: dict[str, str] = {
    "approvals_required": "Approvals needed",
    "approver_proof": "How the approver proved themselves",
    "expires_at_before": "Ended at, before",
    "expires_at": "Ends at",
    "policy_sha256": "Policy sha256",
    "by": "Decided by",
}


@dataclass(frozen=True)
class Described:
    sentence: str
    fields: list[tuple[str, str]]


def actor_label(event: Any) -> str:
    return str(event.actor_name) if event.actor_name else "Ephemera"


_ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")


def _value(value: Any) -> str:
    if isinstance(value, str) and _ISO.fullmatch(value):
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_value(v) for v in value) or "none"
    if isinstance(value, dict):
        return "; ".join(f"{_label(k).lower()}: {_value(v)}" for k, v in value.items() if v not in ("", None, [], {}))
    return str(value)


def _label(key: str) -> str:
    return LABELS.get(key) or key.replace("_", " ").capitalize()


def _address(ip: str) -> str:
    """A client address; the machine's own loopback is named as such (a browser or tool on the
    portal's host, e.g. `make run`, or the portal's own process)."""
    try:
        if ipaddress.ip_address(ip).is_loopback:
            return f"{ip} (the portal's own machine)"
    except ValueError:
        pass
    return ip


def describe(event: Any) -> Described:
    actor = actor_label(event)
    template = SENTENCES.get(event.action)
    if template is None:
        words = event.action.replace(".", ": ", 1).replace("_", " ")
        sentence = f"{words[:1].upper()}{words[1:]} ({actor})"
    else:
        sentence = template.format(actor=actor)
    data = event.data if isinstance(event.data, dict) else {}
    fields = [(_label(k), _value(v)) for k, v in data.items() if v not in ("", None, [], {})]
    if event.source_ip:
        fields.append(("From", _address(str(event.source_ip))))
    return Described(sentence=sentence, fields=fields)
