"""Email through a real SMTP server (aiosmtpd): the people who may decide, with working links."""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

import pytest
from django.db import transaction
from django.test import Client

from approvals.services import request_deny
from portal.notifications import delivery, outbox
from portal.notifications.channels import DeliveryError
from portal.notifications.channels import email as email_channel
from portal.notifications.config import smtp_server as parse_smtp
from portal.notifications.constants import Channel, DeliveryStatus, Event
from portal.notifications.models import Notification, NotificationPreference


def links(text: str) -> list[str]:
    return re.findall(r"https://ephemera\.example\.com[^\s\"<>]*", text)


def open_as(user: Any, url: str) -> Any:
    client = Client()
    client.force_login(user)
    return client.get(urllib.parse.urlsplit(url).path)


def test_approvers_get_the_request_by_email_and_its_links_work(people: Any, make_request: Any, channels_on: Any,
                                                                smtp_server: Any) -> None:
    req = make_request(people.alice, reason="502s on checkout", ticket="INC-42")
    with transaction.atomic():
        outbox.enqueue(Event.REQUEST_CREATED, request=req, actor=people.alice)
    assert delivery.deliver_pending(channel=Channel.EMAIL).delivered == 2
    box = smtp_server.mailbox
    assert box.to("alice@example.com") == [] and box.to("dave@example.com") == []
    for approver in (people.bob, people.carol):
        (msg,) = box.to(approver.email)
        row = Notification.objects.get(channel=Channel.EMAIL, user=approver)
        assert msg["Message-ID"] == f"<{row.delivery_id}@ephemera.example.com>"
        assert msg["From"] == "Ephemera <ephemera@example.com>" and "alice asks for a debug shell" in msg["Subject"]
        text = msg.get_body(preferencelist=("plain",)).get_content()
        html = msg.get_body(preferencelist=("html",)).get_content()
        assert "502s on checkout" in text and "INC-42" in text and "502s on checkout" in html
        request_link = f"https://ephemera.example.com/requests/{req.pk}/"
        assert request_link in links(text) and f'href="{request_link}"' in html
        for url in {*links(text), *re.findall(r'href="([^"]+)"', html)}:
            page = open_as(approver, url)
            assert page.status_code == 200, url
        assert row.status == DeliveryStatus.DELIVERED


def test_html_bodies_escape_what_users_typed(people: Any, make_request: Any, channels_on: Any, smtp_server: Any) -> None:
    req = make_request(people.alice, reason='<img src=x onerror="alert(1)">')
    with transaction.atomic():
        outbox.enqueue(Event.REQUEST_CREATED, request=req, actor=people.alice)
    delivery.deliver_pending(channel=Channel.EMAIL)
    (msg,) = smtp_server.mailbox.to("bob@example.com")
    html = msg.get_body(preferencelist=("html",)).get_content()
    assert "<img" not in html and "&lt;img src=x" in html


def test_the_requester_hears_about_their_request_unless_they_turned_email_off(
    people: Any, make_request: Any, channels_on: Any, smtp_server: Any
) -> None:
    first = make_request(people.alice)
    request_deny(request_id=first.pk, approver=people.bob, comment="use staging", origin=None)
    client = Client()
    client.force_login(people.alice)
    assert client.post("/profile/", {}).status_code == 302  # the box unticked: email off
    assert NotificationPreference.objects.get(user=people.alice).email is False
    second = make_request(people.alice)
    request_deny(request_id=second.pk, approver=people.bob, comment="still no", origin=None)
    delivery.deliver_pending(channel=Channel.EMAIL)
    (msg,) = smtp_server.mailbox.to("alice@example.com")
    assert "use staging" in msg.get_body(preferencelist=("plain",)).get_content()
    assert f"/requests/{first.pk}/" in msg.get_body(preferencelist=("plain",)).get_content()


def test_smtp_tls_never_falls_back_to_plain_text(people: Any, make_request: Any, channels_on: Any, smtp_server: Any,
                                                 settings: Any) -> None:
    settings.EPHEMERA_EMAIL = parse_smtp(f"smtp+tls://user:pw@{smtp_server.host}:{smtp_server.port}")
    req = make_request(people.alice)
    with transaction.atomic():
        (row,) = [r for r in outbox.enqueue(Event.REQUEST_DENIED, request=req) if r.channel == Channel.EMAIL]
    with pytest.raises(DeliveryError, match="does not offer STARTTLS"):
        email_channel.send(row)
    assert smtp_server.mailbox.messages == []


def test_email_url_forms() -> None:
    plain = parse_smtp("smtp://mail.internal")
    assert plain is not None and (plain.scheme, plain.port, plain.username) == ("smtp", 25, "")
    tls = parse_smtp("smtp+tls://me%40example.com:p%3Ass@mail.example.com")
    assert tls is not None and (tls.port, tls.username, tls.password) == (587, "me@example.com", "p:ss")
    implicit = parse_smtp("smtps://u:p@mail.example.com:2465")
    assert implicit is not None and (implicit.scheme, implicit.port) == ("smtps", 2465)
    assert "p:ss" not in repr(tls)
