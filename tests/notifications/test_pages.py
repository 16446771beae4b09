"""The profile page (email on/off, for oneself only) and the admin's delivery page with its retry action."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import Permission
from django.db import transaction
from django.test import Client
from django.utils import timezone

from portal.notifications import outbox
from portal.notifications.constants import Channel, DeliveryStatus, Event
from portal.notifications.models import Notification, NotificationPreference


def logged_in(user: Any, **kwargs: Any) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def test_the_profile_page_needs_a_sign_in(db: Any) -> None:
    answer = Client().get("/profile/")
    assert answer.status_code == 302 and answer["Location"].startswith("/login/")


def test_a_user_turns_email_off_and_on_for_themselves_only(people: Any) -> None:
    client = logged_in(people.alice)
    page = client.get("/profile/")
    assert page.status_code == 200
    assert re.search(r'name="email" id="profile-email" checked', page.content.decode())
    # The form has no user field: whatever is posted, only the signed-in user's choice changes.
    assert client.post("/profile/", {"user": people.bob.pk, "email": ""}).status_code == 302
    assert NotificationPreference.objects.get(user=people.alice).email is False
    assert not NotificationPreference.objects.filter(user=people.bob).exists()
    assert 'checked' not in client.get("/profile/").content.decode().split('id="profile-email"')[1].split(">")[0]
    client.post("/profile/", {"email": "on"})
    assert NotificationPreference.objects.get(user=people.alice).email is True


def test_the_profile_page_is_csrf_protected_and_has_no_inline_script_or_style(people: Any) -> None:
    client = logged_in(people.alice, enforce_csrf_checks=True)
    assert client.post("/profile/", {"email": ""}).status_code == 403
    assert not NotificationPreference.objects.filter(user=people.alice).exists()
    page = client.get("/profile/")
    html = page.content.decode()
    assert "default-src" in page["Content-Security-Policy"] and "'unsafe-inline'" not in page["Content-Security-Policy"]
    assert not re.search(r"<script(?![^>]*\bsrc=)", html) and "<style" not in html and " style=" not in html
    assert ' onclick=' not in html and ' onchange=' not in html


def _failed_row(people: Any, make_request: Any) -> Notification:
    req = make_request(people.alice)
    with transaction.atomic():
        (row,) = [r for r in outbox.enqueue(Event.REQUEST_CREATED, request=req) if r.channel == Channel.WEBHOOK]
    Notification.objects.filter(pk=row.pk).update(status=DeliveryStatus.FAILED, attempts=31, last_error="http://hooks answered HTTP 500",
                                                  next_attempt_at=timezone.now() + timedelta(hours=1))
    return row


def test_admins_see_each_delivery_and_retry_one(people: Any, make_request: Any, channels_on: Any) -> None:
    row = _failed_row(people, make_request)
    admin = logged_in(people.admin)
    page = admin.get("/admin/portal/notification/")
    assert page.status_code == 200
    html = page.content.decode()
    for shown in ("request.created", "webhook", "31", "http://hooks answered HTTP 500", "gave up", "retry_now"):
        assert shown in html, shown
    answer = admin.post("/admin/portal/notification/", {"action": "retry_now", "_selected_action": [row.pk]})
    assert answer.status_code == 302
    row.refresh_from_db()
    assert row.status == DeliveryStatus.PENDING and row.next_attempt_at <= timezone.now()


def test_staff_who_may_only_look_cannot_retry(people: Any, make_request: Any, channels_on: Any) -> None:
    row = _failed_row(people, make_request)
    people.eve.is_staff = True
    people.eve.save()
    people.eve.user_permissions.add(Permission.objects.get(codename="view_notification"))
    staff = logged_in(people.eve)
    page = staff.get("/admin/portal/notification/")
    assert page.status_code == 200 and "retry_now" not in page.content.decode()
    staff.post("/admin/portal/notification/", {"action": "retry_now", "_selected_action": [row.pk]})
    row.refresh_from_db()
    assert row.status == DeliveryStatus.FAILED
