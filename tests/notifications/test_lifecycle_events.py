"""A whole debug session's life through the real services and kubesim: every event's rows, to the right
people, with the session's page as the link; and the webhook receiver gets them all, in order."""

from __future__ import annotations

from typing import Any

from portal.notifications import delivery
from portal.notifications.constants import Channel, Event
from portal.notifications.models import Notification
from sessions import extensions
from sessions.choices import EndReason
from sessions.services import session_end
from tests.sessions.test_provision import approved_session, provision


def emailed(event: str) -> list[str]:
    return sorted(Notification.objects.filter(event=event, channel=Channel.EMAIL).values_list("recipient", flat=True))


def test_every_step_of_a_session_is_told(people: Any, nginx_pod: str, channels_on: Any) -> None:
    session = provision(approved_session(people.alice, people.bob, nginx_pod))
    assert session.status == "running", session.failure_message
    ext = extensions.extension_request(session_id=session.pk, user=people.alice, minutes=10, reason="still digging", origin=None)
    extensions.extension_deny(extension_id=ext.pk, approver=people.carol, comment="wrap up", origin=None)
    ext2 = extensions.extension_request(session_id=session.pk, user=people.alice, minutes=5, reason="one more look", origin=None)
    extensions.extension_approve(extension_id=ext2.pk, approver=people.bob, origin=None)
    session_end(session_id=session.pk, actor=people.bob, reason=EndReason.REVOKED, comment="seen enough")

    assert emailed(Event.REQUEST_CREATED) == ["bob@example.com", "carol@example.com"]
    assert emailed(Event.REQUEST_APPROVED) == ["alice@example.com"]
    assert emailed(Event.SESSION_STARTED) == ["alice@example.com"]
    assert emailed(Event.EXTENSION_REQUESTED) == ["bob@example.com", "bob@example.com", "carol@example.com", "carol@example.com"]
    assert emailed(Event.EXTENSION_DECIDED) == ["alice@example.com", "alice@example.com"]
    assert emailed(Event.SESSION_ENDED) == ["alice@example.com"]

    hooks = list(Notification.objects.filter(channel=Channel.WEBHOOK).order_by("id"))
    assert [r.event for r in hooks] == [
        "request.created", "request.approved", "session.started", "extension.requested", "extension.decided",
        "extension.requested", "extension.decided", "session.ended",
    ]
    started = hooks[2].payload
    assert started["url"] == f"https://ephemera.example.com/sessions/{session.pk}/"
    assert started["session"]["status"] == "running" and started["session"]["expires_at"]
    denied, approved = hooks[4].payload, hooks[6].payload
    assert denied["extension"]["status"] == "denied" and denied["detail"]["comment"] == "wrap up" and denied["actor"] == "carol"
    assert approved["extension"]["status"] == "approved" and approved["extension"]["minutes"] == 5
    ended = hooks[7].payload
    assert ended["session"]["status"] == "ended" and ended["session"]["end_reason"] == "revoked"
    assert ended["detail"]["reason"] == "Revoked by an approver (bob): seen enough"
    assert "seen enough" in ended["message"]

    delivery.deliver_pending(channel=Channel.WEBHOOK)
    got = [h.json["event"] for h in channels_on.on("/hook?token=s3cr3t-in-url")]
    assert got == [r.event for r in hooks]
