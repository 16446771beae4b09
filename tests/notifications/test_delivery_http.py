"""Delivery to a real HTTP receiver: signed webhook posts and Slack messages, retried until a 2xx,
each event once, in order per request; no redirect followed, no URL in an error, a hard deadline."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from approvals.services import request_deny
from portal.notifications import delivery, outbox
from portal.notifications.constants import Channel, DeliveryStatus, Event
from portal.notifications.models import Notification

HOOK = "/hook?token=s3cr3t-in-url"


def drain(channel: str, seconds: float = 15) -> None:
    """Run delivery passes (what the worker's thread does) until nothing of `channel` is pending."""
    deadline = time.monotonic() + seconds
    while Notification.objects.filter(channel=channel, status=DeliveryStatus.PENDING).exists():
        assert time.monotonic() < deadline, list(Notification.objects.values("event", "status", "attempts", "last_error"))
        delivery.deliver_pending(channel=channel)
        time.sleep(0.05)


def test_the_webhook_gets_each_event_once_after_two_500s(people: Any, make_request: Any, channels_on: Any,
                                                         fast_retries: None) -> None:
    receiver = channels_on
    receiver.answers[HOOK] = [500, 500]
    first = make_request(people.alice)
    with transaction.atomic():
        outbox.enqueue(Event.REQUEST_CREATED, request=first, actor=people.alice)
    request_deny(request_id=first.pk, approver=people.bob, comment="no", origin=None)
    other = make_request(people.alice)
    request_deny(request_id=other.pk, approver=people.carol, comment="also no", origin=None)

    drain(Channel.WEBHOOK)

    hits = receiver.on(HOOK)
    rows = list(Notification.objects.filter(channel=Channel.WEBHOOK).order_by("id"))
    assert [h.status for h in hits].count(500) == 2
    ok = [h for h in hits if h.status == 200]
    # Each event exactly once with a 2xx, every post signed, the id in the header and the body.
    assert sorted(h.headers["X-Ephemera-Delivery"] for h in ok) == sorted(str(r.delivery_id) for r in rows)
    assert all(h.signature_ok for h in hits)
    assert all(h.headers["X-Ephemera-Delivery"] == h.json["id"] and h.headers["X-Ephemera-Event"] == h.json["event"] for h in hits)
    # A retry carries the same id: each row was posted once per attempt, under its own id.
    assert [r.attempts for r in rows] == [sum(h.headers["X-Ephemera-Delivery"] == str(r.delivery_id) for h in hits) for r in rows]
    assert sum(r.attempts for r in rows) == 5
    assert all(r.status == DeliveryStatus.DELIVERED and r.delivered_at for r in rows)
    # In order per request: the first request's denial never overtook its (failing) creation.
    mine = [h.json["event"] for h in ok if h.json["request"]["id"] == str(first.pk)]
    assert mine == ["request.created", "request.denied"]


def test_a_later_event_waits_for_an_earlier_one_of_its_request(people: Any, make_request: Any, channels_on: Any) -> None:
    receiver = channels_on
    receiver.answers[HOOK] = [503]
    req = make_request(people.alice)
    with transaction.atomic():
        outbox.enqueue(Event.REQUEST_CREATED, request=req, actor=people.alice)
    request_deny(request_id=req.pk, approver=people.bob, comment="no", origin=None)
    delivery.deliver_pending(channel=Channel.WEBHOOK)
    created, denied = Notification.objects.filter(channel=Channel.WEBHOOK).order_by("id")
    assert created.status == DeliveryStatus.PENDING and created.last_error == "http://127.0.0.1 answered HTTP 503: receiver says no??<b>"
    assert denied.attempts == 0, "sent before the event it follows"
    assert created.next_attempt_at > timezone.now()


def test_slack_gets_block_kit_with_the_facts_and_a_link_and_no_markup_from_users(
    people: Any, make_request: Any, channels_on: Any
) -> None:
    receiver = channels_on
    req = make_request(people.alice, reason="<!channel> see <https://evil.example|the runbook> & fix", ticket="INC-7",
                       profile="sysadmin", policy={"rule": "privileged", "approver_groups": ["approvers"]}, approvals_required=2)
    with transaction.atomic():
        outbox.enqueue(Event.REQUEST_CREATED, request=req, actor=people.alice)
    drain(Channel.SLACK)
    (hit,) = receiver.on("/slack")
    msg = hit.json
    assert hit.signature_ok is None  # Slack's URL is the secret; no signature headers
    text = str(msg)
    assert "<!channel>" not in text and "<https://evil.example" not in text
    assert "&lt;!channel&gt; see &lt;https://evil.example|the runbook&gt; &amp; fix" in text
    fields = " ".join(f["text"] for b in msg["blocks"] if b["type"] == "section" for f in b.get("fields", []))
    assert "HIGH: privileged" in fields and "15 min" in fields and "INC-7" in fields
    assert "privileged: 0 of 2 approvals" in fields and "default/distroless-nginx-x:distroless-nginx-ctr" in fields
    (actions,) = [b for b in msg["blocks"] if b["type"] == "actions"]
    assert actions["elements"][0]["url"] == f"https://ephemera.example.com/requests/{req.pk}/"
    assert not any(e.get("action_id") or e.get("value") for e in actions["elements"]), "no approve button in Slack"


def test_a_redirect_is_not_followed_and_the_error_never_shows_the_url(people: Any, make_request: Any, channels_on: Any) -> None:
    receiver = channels_on
    receiver.answers[HOOK] = [302]
    req = make_request(people.alice)
    with transaction.atomic():
        outbox.enqueue(Event.REQUEST_CREATED, request=req)
    delivery.deliver_pending(channel=Channel.WEBHOOK)
    row = Notification.objects.get(channel=Channel.WEBHOOK)
    assert row.status == DeliveryStatus.PENDING and "HTTP 302" in row.last_error
    assert "s3cr3t" not in row.last_error and "/hook" not in row.last_error
    assert len(receiver.on(HOOK)) == 1


def test_a_receiver_that_stalls_is_cut_at_the_deadline(people: Any, make_request: Any, channels_on: Any, settings: Any) -> None:
    receiver = channels_on
    receiver.stall = threading.Event()
    settings.EPHEMERA_NOTIFY_TIMEOUT_SECONDS = 1
    req = make_request(people.alice)
    with transaction.atomic():
        outbox.enqueue(Event.REQUEST_CREATED, request=req)
    started = time.monotonic()
    report = delivery.deliver_pending(channel=Channel.WEBHOOK)
    assert time.monotonic() - started < 3
    assert report.failed == 1
    row = Notification.objects.get(channel=Channel.WEBHOOK)
    assert row.status == DeliveryStatus.PENDING and row.claimed_by == "" and "no answer within 1 s" in row.last_error


def test_it_gives_up_after_a_day_and_an_admin_retry_sends_it(people: Any, make_request: Any, channels_on: Any) -> None:
    receiver = channels_on
    receiver.answers[HOOK] = [500]
    req = make_request(people.alice)
    with transaction.atomic():
        outbox.enqueue(Event.REQUEST_CREATED, request=req)
    Notification.objects.update(created_at=timezone.now() - delivery.MAX_RETRY_AGE - timedelta(minutes=1))
    assert delivery.deliver_pending(channel=Channel.WEBHOOK).gave_up == 1
    row = Notification.objects.get(channel=Channel.WEBHOOK)
    assert row.status == DeliveryStatus.FAILED
    assert delivery.deliver_pending(channel=Channel.WEBHOOK).any() is False  # given up: not retried on its own
    assert delivery.retry(Notification.objects.filter(pk=row.pk)) == 1
    assert delivery.deliver_pending(channel=Channel.WEBHOOK).delivered == 1
    row.refresh_from_db()
    assert row.status == DeliveryStatus.DELIVERED and row.attempts == 2


def test_backoff_doubles_up_to_its_cap() -> None:
    waits = [delivery.backoff(n).total_seconds() for n in (1, 2, 3, 4, 30)]
    assert 1.8 <= waits[0] <= 2.2 and 3.6 <= waits[1] <= 4.4 and 7.2 <= waits[2] <= 8.8 and 14.4 <= waits[3] <= 17.6
    assert waits[4] <= delivery.MAX_RETRY.total_seconds() * 1.1


def test_a_receiver_down_for_an_hour_gets_everything_afterwards_in_order(people: Any, make_request: Any,
                                                                          channels_on: Any) -> None:
    receiver = channels_on
    receiver.answers[HOOK] = [502] * 1000
    requests = [make_request(people.alice) for _ in range(3)]
    for req in requests:
        with transaction.atomic():
            outbox.enqueue(Event.REQUEST_CREATED, request=req, actor=people.alice)
        request_deny(request_id=req.pk, approver=people.bob, comment="no", origin=None)
    # An hour of retries against a dead receiver, the clock moved on by each row's backoff.
    for _ in range(12):
        delivery.deliver_pending(channel=Channel.WEBHOOK)
        Notification.objects.filter(status=DeliveryStatus.PENDING).update(next_attempt_at=timezone.now())
    assert not Notification.objects.filter(channel=Channel.WEBHOOK, status=DeliveryStatus.DELIVERED).exists()
    # Only each request's first event was tried: a later one never goes out ahead of it.
    hook_rows = Notification.objects.filter(channel=Channel.WEBHOOK)
    assert all(r.attempts >= 10 for r in hook_rows.filter(event=Event.REQUEST_CREATED))
    assert all(r.attempts == 0 for r in hook_rows.filter(event=Event.REQUEST_DENIED))
    receiver.answers[HOOK] = []  # back up
    drain(Channel.WEBHOOK)
    ok = [h.json for h in receiver.on(HOOK) if h.status == 200]
    assert len(ok) == 6 and len({h["id"] for h in ok}) == 6
    for req in requests:
        assert [h["event"] for h in ok if h["request"]["id"] == str(req.pk)] == ["request.created", "request.denied"]
