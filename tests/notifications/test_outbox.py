"""The outbox: rows written in the change's own transaction, to the right people, with the API's shapes."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.db import transaction

from approvals.serializers import RequestSerializer
from approvals.services import expire_if_due, request_approve, request_deny
from portal.notifications import outbox
from portal.notifications.constants import Channel, Event
from portal.notifications.models import Notification, NotificationPreference
from tests.conftest import _make_user


def rows(event: str | None = None, channel: str | None = None) -> list[Notification]:
    qs = Notification.objects.order_by("id")
    if event:
        qs = qs.filter(event=event)
    if channel:
        qs = qs.filter(channel=channel)
    return list(qs)


def test_it_writes_nothing_when_no_channel_is_set(people: Any, make_request: Any) -> None:
    req = make_request(people.alice)
    request_deny(request_id=req.pk, approver=people.bob, comment="not now", origin=None)
    assert Notification.objects.count() == 0


def test_it_refuses_to_enqueue_outside_the_changes_transaction(
    transactional_db: Any, people: Any, make_request: Any, channels_on: Any
) -> None:
    req = make_request(people.alice)
    with pytest.raises(RuntimeError, match="inside the transaction"):
        outbox.enqueue(Event.REQUEST_CREATED, request=req)


def test_a_rolled_back_change_tells_nobody(people: Any, make_request: Any, channels_on: Any) -> None:
    req = make_request(people.alice)

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        request_deny(request_id=req.pk, approver=people.bob, comment="not now", origin=None)
        assert len(rows(Event.REQUEST_DENIED)) == 3  # webhook, Slack, alice's email: all in this transaction
        raise Boom
    assert Notification.objects.count() == 0


def test_a_deny_is_told_to_every_channel_and_emailed_to_the_requester(people: Any, make_request: Any, channels_on: Any) -> None:
    req = make_request(people.alice)
    request_deny(request_id=req.pk, approver=people.bob, comment="use staging", origin=None)
    denied = rows(Event.REQUEST_DENIED)
    assert sorted(r.channel for r in denied) == [Channel.EMAIL, Channel.SLACK, Channel.WEBHOOK]
    mail = next(r for r in denied if r.channel == Channel.EMAIL)
    assert mail.recipient == "alice@example.com" and mail.user == people.alice
    payload = denied[0].payload
    req.refresh_from_db()
    assert set(payload) >= {"event", "occurred_at", "url", "request", "session"}
    assert payload["event"] == "request.denied" and payload["session"] is None
    assert payload["url"] == f"https://ephemera.example.com/requests/{req.pk}/"
    assert payload["request"] == RequestSerializer(req).data | {"id": str(req.pk)}
    assert payload["request"]["status"] == "denied" and payload["actor"] == "bob"
    assert "use staging" in payload["message"]


def test_the_payload_says_what_was_true_when_it_happened(people: Any, make_request: Any, channels_on: Any) -> None:
    req = make_request(people.alice, approvals_required=2)
    request_approve(request_id=req.pk, approver=people.bob, origin=None)  # one of two: nothing to tell yet
    assert rows() == []
    request_approve(request_id=req.pk, approver=people.carol, origin=None)
    approved = rows(Event.REQUEST_APPROVED, Channel.WEBHOOK)[0].payload
    assert approved["request"]["policy"]["approvals"] == 2 and approved["request"]["status"] == "approved"
    assert [r.recipient for r in rows(Event.REQUEST_APPROVED, Channel.EMAIL)] == ["alice@example.com"]


def test_an_expiry_is_told_to_the_requester(people: Any, make_request: Any, channels_on: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    req = make_request(people.alice, expires_at=timezone.now() - timedelta(seconds=1))
    assert expire_if_due(request_id=req.pk)
    assert [r.recipient for r in rows(Event.REQUEST_EXPIRED, Channel.EMAIL)] == ["alice@example.com"]


def test_a_request_is_emailed_to_its_rules_approvers_only(people: Any, make_request: Any, channels_on: Any) -> None:
    """Who is told is who may decide: the rule's groups (not the default approvers), never the requester."""
    oncall = Group.objects.create(name="payments-oncall")
    frank = _make_user("frank")
    frank.groups.add(oncall)
    people.alice.groups.add(oncall)  # a requester in the group still doesn't decide their own request
    grace = _make_user("grace")
    grace.groups.add(oncall)
    NotificationPreference.objects.create(user=grace, email=False)
    User.objects.create_user("noaddr", password="x").groups.add(oncall)
    User.objects.create_user("crlf", "evil@example.com\r\nBcc: all@example.com", "x").groups.add(oncall)
    req = make_request(people.alice, policy={"rule": "payments", "approver_groups": ["payments-oncall"]})
    with transaction.atomic():
        outbox.enqueue(Event.REQUEST_CREATED, request=req, actor=people.alice)
    assert [r.recipient for r in rows(Event.REQUEST_CREATED, Channel.EMAIL)] == ["frank@example.com"]


def test_a_request_the_policy_approved_itself_asks_no_approver(people: Any, make_request: Any, channels_on: Any) -> None:
    req = make_request(people.alice, approvals_required=0)
    with transaction.atomic():
        outbox.enqueue(Event.REQUEST_CREATED, request=req, actor=people.alice)
    assert rows(Event.REQUEST_CREATED, Channel.EMAIL) == []
    assert len(rows(Event.REQUEST_CREATED)) == 2  # the webhook and Slack still hear of it


def test_nobody_is_emailed_about_what_they_did_themselves(people: Any, make_request: Any, channels_on: Any) -> None:
    req = make_request(people.alice)
    with transaction.atomic():
        outbox.enqueue(Event.SESSION_ENDED, request=req, actor=people.alice)
    assert rows(Event.SESSION_ENDED, Channel.EMAIL) == []
    assert len(rows(Event.SESSION_ENDED)) == 2


def test_oversight_findings_are_emailed_to_admins(people: Any, channels_on: Any) -> None:
    with transaction.atomic():
        outbox.enqueue(Event.OVERSIGHT_FINDING, finding={"kind": "ephemeral_container", "namespace": "default", "pod": "web-1",
                                                         "container": "debugger-x"})
    assert [r.recipient for r in rows(Event.OVERSIGHT_FINDING, Channel.EMAIL)] == ["admin@example.com"]
    hook = rows(Event.OVERSIGHT_FINDING, Channel.WEBHOOK)[0]
    assert hook.payload["url"] == "https://ephemera.example.com/sessions/oversight/"
    assert hook.payload["finding"]["pod"] == "web-1"


def test_an_oversight_finding_is_told_once_through_the_outbox(people: Any, channels_on: Any) -> None:
    from django.utils import timezone

    from sessions import oversight

    item = {"key": "ephemeral_container:uid-1:debugger-zz", "kind": "ephemeral_container", "namespace": "default",
            "pod": "web-1", "container": "debugger-zz", "detail": {"image": "busybox", "target": "web", "privileged": False}}
    assert oversight._record(dict(item), timezone.now())
    assert not oversight._record(dict(item), timezone.now())  # seen again: already told
    hooks = rows(Event.OVERSIGHT_FINDING, Channel.WEBHOOK)
    assert len(hooks) == 1 and hooks[0].payload["finding"]["key"] == item["key"]
    assert hooks[0].payload["finding"]["event"] == "ephemera.finding"  # the oversight webhook's own shape
