"""Extending a running session: the requester asks, an approver decides, expires_at moves,
every step audited; the connected terminal keeps running past the old limit."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from portal.models import AuditEvent
from sessions import extensions, services
from sessions.choices import EndReason, SessionStatus
from sessions.models import DebugSession, SessionExtension
from tests.sessions.test_provision import approved_session, provision


@pytest.fixture
def running(alice: Any, bob: Any, nginx_pod: str) -> DebugSession:
    session = provision(approved_session(alice, bob, nginx_pod))
    assert session.status == SessionStatus.RUNNING, session.failure_message
    yield session
    services.session_end(session_id=session.pk, actor=alice, reason=EndReason.USER)


def test_a_requester_asks_and_an_approver_extends(running: DebugSession, alice: Any, carol: Any, api_client_for: Any) -> None:
    before = running.expires_at
    resp = api_client_for(alice).post(f"/api/v1/sessions/{running.pk}/extend", {"minutes": 20, "reason": "still digging"},
                                      format="json")
    assert resp.status_code == 201, resp.content
    ext_id = resp.json()["id"]
    assert resp.json()["status"] == "pending"
    # Pending: nothing moved yet.
    assert DebugSession.objects.get(pk=running.pk).expires_at == before
    resp = api_client_for(carol).post(f"/api/v1/extensions/{ext_id}/approve", {"comment": "ok"}, format="json")
    assert resp.status_code == 200 and resp.json()["status"] == "approved"
    running.refresh_from_db()
    assert running.expires_at == before + timedelta(minutes=20)
    event = AuditEvent.objects.get(session=running, action="session.extended")
    assert event.actor == carol and event.data["minutes"] == 20
    assert AuditEvent.objects.filter(session=running, action="session.extension_requested").count() == 1
    # Decided once.
    assert api_client_for(carol).post(f"/api/v1/extensions/{ext_id}/approve", {}, format="json").status_code == 409


def test_who_may_ask_and_decide(running: DebugSession, alice: Any, bob: Any, eve: Any, dave: Any, api_client_for: Any) -> None:
    url = f"/api/v1/sessions/{running.pk}/extend"
    assert api_client_for(eve).post(url, {"minutes": 5, "reason": "x"}, format="json").status_code == 404
    assert api_client_for(bob).post(url, {"minutes": 5, "reason": "x"}, format="json").status_code == 403
    ext = extensions.extension_request(session_id=running.pk, user=alice, minutes=5, reason="x", origin=None)
    assert api_client_for(alice).post(f"/api/v1/extensions/{ext.pk}/approve", {}, format="json").status_code == 403
    assert api_client_for(dave).post(f"/api/v1/extensions/{ext.pk}/approve", {}, format="json").status_code == 403
    assert api_client_for(eve).post(f"/api/v1/extensions/{ext.pk}/approve", {}, format="json").status_code == 404
    resp = api_client_for(bob).post(f"/api/v1/extensions/{ext.pk}/deny", {}, format="json")
    assert resp.status_code == 400 and "comment" in resp.json()
    resp = api_client_for(bob).post(f"/api/v1/extensions/{ext.pk}/deny", {"comment": "wrap it up"}, format="json")
    assert resp.status_code == 200 and resp.json()["status"] == "denied"
    assert AuditEvent.objects.filter(session=running, action="session.extension_denied").count() == 1
    assert not AuditEvent.objects.filter(session=running, action="session.extended").exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [({"minutes": 0, "reason": "x"}, "minutes"), ({"minutes": "lots", "reason": "x"}, "minutes"),
     ({"minutes": 10_000, "reason": "x"}, "minutes"), ({"minutes": 5, "reason": " "}, "reason")],
)
def test_bad_extension_requests_change_nothing(running: DebugSession, alice: Any, api_client_for: Any, body: dict, field: str) -> None:
    resp = api_client_for(alice).post(f"/api/v1/sessions/{running.pk}/extend", body, format="json")
    assert resp.status_code == 400 and field in resp.json()
    assert not SessionExtension.objects.exists()
    assert not AuditEvent.objects.filter(action="session.extension_requested").exists()


def test_one_pending_at_a_time_and_the_total_is_capped(running: DebugSession, alice: Any, bob: Any, settings: Any) -> None:
    # The cap is the request's rule's max_duration_minutes, as recorded on the request.
    from approvals.models import DebugRequest

    DebugRequest.objects.filter(pk=running.request_id).update(policy={**running.request.policy, "max_duration_minutes": 30})
    ext = extensions.extension_request(session_id=running.pk, user=alice, minutes=20, reason="x", origin=None)
    with pytest.raises(extensions.ExtensionConflict):
        extensions.extension_request(session_id=running.pk, user=alice, minutes=5, reason="y", origin=None)
    extensions.extension_approve(extension_id=ext.pk, approver=bob, origin=None)
    with pytest.raises(ValidationError) as info:
        extensions.extension_request(session_id=running.pk, user=alice, minutes=11, reason="y", origin=None)
    assert "between 1 and 10" in str(info.value)


def test_an_ended_session_cannot_be_extended_and_its_pending_extension_is_cancelled(
    running: DebugSession, alice: Any, bob: Any
) -> None:
    ext = extensions.extension_request(session_id=running.pk, user=alice, minutes=5, reason="x", origin=None)
    services.session_end(session_id=running.pk, actor=alice, reason=EndReason.USER)
    assert SessionExtension.objects.get(pk=ext.pk).status == "cancelled"
    with pytest.raises(extensions.ExtensionConflict):
        extensions.extension_approve(extension_id=ext.pk, approver=bob, origin=None)
    with pytest.raises(extensions.ExtensionConflict):
        extensions.extension_request(session_id=running.pk, user=alice, minutes=5, reason="x", origin=None)


def test_an_extended_session_is_not_expired_by_a_stale_timer(running: DebugSession, alice: Any, bob: Any) -> None:
    ext = extensions.extension_request(session_id=running.pk, user=alice, minutes=5, reason="x", origin=None)
    extensions.extension_approve(extension_id=ext.pk, approver=bob, origin=None)
    services.session_end(session_id=running.pk, actor=None, reason=EndReason.EXPIRED)
    assert DebugSession.objects.get(pk=running.pk).status == SessionStatus.RUNNING
    assert services.end_expired_sessions(now=timezone.now()) == 0


def test_only_approvers_are_refused_their_own(alice: Any, bob: Any, carol: Any, running: DebugSession) -> None:
    ext = extensions.extension_request(session_id=running.pk, user=alice, minutes=5, reason="x", origin=None)
    with pytest.raises(PermissionDenied):
        extensions.extension_approve(extension_id=ext.pk, approver=alice, origin=None)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_terminal_outlives_its_old_limit_after_an_extension(term_session: Any, term_users: Any) -> None:
    from tests.sessions.conftest import open_term
    from tests.sessions.test_terminal_lifetime import _ready

    sid = str(term_session.pk)
    await sync_to_async(DebugSession.objects.filter(pk=sid).update)(expires_at=timezone.now() + timedelta(seconds=4))
    term, _ = await open_term(term_session, user=term_users.alice)
    try:
        await _ready(term)
        ext = await sync_to_async(extensions.extension_request)(
            session_id=sid, user=term_users.alice, minutes=1, reason="need a minute", origin=None)
        await sync_to_async(extensions.extension_approve)(extension_id=ext.pk, approver=term_users.bob, origin=None)
        # Past the old limit, reading the socket meanwhile (as a browser would).
        old_limit_passed = asyncio.get_running_loop().time() + 6
        with contextlib.suppress(AssertionError):
            await term.until(lambda: asyncio.get_running_loop().time() > old_limit_passed, timeout=7)
        assert term.close_code is None, term.statuses
        assert b"still-here" in await term.run("echo still-here", "ext")
        assert any(s.get("event") == "extended" for s in term.statuses), term.statuses
    finally:
        await term.close()
    session = await sync_to_async(DebugSession.objects.get)(pk=sid)
    assert session.status == "running" and session.expires_at > timezone.now()
    await sync_to_async(services.session_end)(session_id=sid, actor=term_users.alice, reason=EndReason.USER)


def test_the_session_page_and_the_approvals_queue_carry_the_buttons(running: DebugSession, alice: Any, bob: Any) -> None:
    from django.test import Client

    as_alice, as_bob = Client(), Client()
    as_alice.force_login(alice)
    as_bob.force_login(bob)
    assert f'action="/sessions/{running.pk}/extend"' in as_alice.get(f"/sessions/{running.pk}/").content.decode()
    assert "/extend" not in as_bob.get(f"/sessions/{running.pk}/").content.decode()
    resp = as_alice.post(f"/sessions/{running.pk}/extend", {"minutes": "10", "reason": "flaky repro"})
    assert resp.status_code == 302
    ext = SessionExtension.objects.get()
    queue = as_bob.get("/approvals/").content.decode()
    assert f"/sessions/extensions/{ext.pk}/decide" in queue and "flaky repro" in queue
    before = DebugSession.objects.get(pk=running.pk).expires_at
    assert as_alice.post(f"/sessions/extensions/{ext.pk}/decide", {"verdict": "approve"}).status_code == 302
    assert SessionExtension.objects.get().status == "pending"  # not her own
    assert as_bob.post(f"/sessions/extensions/{ext.pk}/decide", {"verdict": "approve"}).status_code == 302
    assert DebugSession.objects.get(pk=running.pk).expires_at == before + timedelta(minutes=10)
    assert "Approved by bob" in as_alice.get(f"/sessions/{running.pk}/").content.decode()
