"""The extension decision form (HTML): a refusal is a message on a page the user can see.

It used to send every answer back to the approvals queue, so a non-approver (the requester, an
auditor, an approver whose role was removed while the queue was open) landed on a 403 page
instead of reading why the decision was refused.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from approvals.choices import RequestStatus
from sessions.choices import ExtensionStatus, SessionStatus
from sessions.models import DebugSession, SessionExtension

pytestmark = pytest.mark.django_db


@pytest.fixture
def pending_extension(alice: Any, make_request: Any) -> SessionExtension:
    # Written directly: what is tested is the view's answer, not provisioning.
    req = make_request(alice, status=RequestStatus.APPROVED)
    now = timezone.now()
    session = DebugSession.objects.create(
        request=req, status=SessionStatus.RUNNING, created_at=now, started_at=now,
        expires_at=now + timedelta(minutes=15), namespace="default", pod="distroless-nginx-x", container_name="debugger-x",
    )
    return SessionExtension.objects.create(session=session, requester=alice, minutes=10, reason="more", created_at=now)


def _decide(user: Any, ext: SessionExtension, **post: str) -> tuple[Any, Any]:
    client = Client()
    client.force_login(user)
    url = reverse("extension_decide", args=[ext.pk])
    first = client.post(url, {"verdict": "approve", "comment": "", **post})
    return first, client.get(first["Location"])


@pytest.mark.parametrize(
    ("who", "message"),
    [
        ("alice", "Only the approvers of the request behind this session can decide its extensions."),  # the requester herself
        ("dave", "Only the approvers of the request behind this session can decide its extensions."),  # an auditor sees the session, decides nothing
    ],
)
def test_a_non_approver_sees_why_on_the_session_page(who: str, message: str, people: Any,
                                                     pending_extension: SessionExtension) -> None:
    first, page = _decide(getattr(people, who), pending_extension)
    assert first.status_code == 302
    assert first["Location"] == reverse("session_detail", args=[pending_extension.session_id])
    assert page.status_code == 200
    assert message in page.content.decode()
    pending_extension.refresh_from_db()
    assert pending_extension.status == ExtensionStatus.PENDING


def test_an_approver_moved_to_auditors_sees_why(bob: Any, settings: Any, pending_extension: SessionExtension) -> None:
    # Moved from approvers to auditors while the queue was open in the browser: he still sees
    # the session (as an auditor), not the queue. (With no role left he sees neither: a 404.)
    bob.groups.clear()
    bob.groups.add(Group.objects.get_or_create(name=settings.EPHEMERA_AUDITOR_GROUP)[0])
    first, page = _decide(bob, pending_extension)
    assert first["Location"] == reverse("session_detail", args=[pending_extension.session_id])
    assert page.status_code == 200 and "Only the approvers of the request behind this session can decide its extensions." in page.content.decode()


def test_a_bad_comment_from_a_non_approver_is_shown_too(alice: Any, pending_extension: SessionExtension) -> None:
    first, page = _decide(alice, pending_extension, comment="nul\x00here")
    assert first["Location"] == reverse("session_detail", args=[pending_extension.session_id])
    assert page.status_code == 200 and "comment" in page.content.decode().lower()


def test_an_admin_who_is_no_approver_stays_on_the_queue(admin_user: Any, pending_extension: SessionExtension) -> None:
    first, page = _decide(admin_user, pending_extension)
    assert first["Location"] == reverse("approvals")
    assert page.status_code == 200 and "Only the approvers of the request behind this session can decide its extensions." in page.content.decode()


def test_an_approver_goes_back_to_the_queue(bob: Any, pending_extension: SessionExtension) -> None:
    first, page = _decide(bob, pending_extension, verdict="deny")  # no comment: refused, shown on the queue
    assert first["Location"] == reverse("approvals")
    assert page.status_code == 200 and "Say why you deny the extension" in page.content.decode()
    first, page = _decide(bob, pending_extension, verdict="approve")
    assert first["Location"] == reverse("approvals")
    assert page.status_code == 200 and "Decision recorded." in page.content.decode()
    pending_extension.refresh_from_db()
    assert pending_extension.status == ExtensionStatus.APPROVED


def test_someone_who_may_not_see_the_session_gets_404(eve: Any, pending_extension: SessionExtension) -> None:
    client = Client()
    client.force_login(eve)
    assert client.post(reverse("extension_decide", args=[pending_extension.pk]), {"verdict": "approve"}).status_code == 404
