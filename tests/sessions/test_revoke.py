"""Approvers revoke and admins end someone else's session: a reason is required, and it
reaches the audit trail, the session page and the connected terminal."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from approvals import services as request_services
from portal.models import AuditEvent
from sessions.models import DebugSession


def _session(people: Any, make_request: Any) -> DebugSession:
    req = make_request(people.alice)
    request_services.request_approve(request_id=req.pk, approver=people.bob, origin=None)
    return DebugSession.objects.get(request=req)


def test_it_rejects_a_revoke_without_a_reason_and_changes_nothing(people: Any, make_request: Any, api_client_for: Any) -> None:
    session = _session(people, make_request)
    resp = api_client_for(people.carol).post(f"/api/v1/sessions/{session.pk}/end", {"reason": "  "}, format="json")
    assert resp.status_code == 400 and "reason" in resp.json()
    session.refresh_from_db()
    assert session.status == "provisioning"
    assert not AuditEvent.objects.filter(session=session, action="session.ended").exists()


def test_an_approver_revokes_with_a_reason(people: Any, make_request: Any, api_client_for: Any) -> None:
    session = _session(people, make_request)
    resp = api_client_for(people.carol).post(f"/api/v1/sessions/{session.pk}/end", {"reason": "wrong pod"}, format="json")
    assert resp.status_code == 200, resp.content
    session.refresh_from_db()
    assert (session.status, session.end_reason, session.ended_by, session.end_comment) == (
        "ended", "revoked", people.carol, "wrong pod"
    )
    event = AuditEvent.objects.get(session=session, action="session.ended")
    assert event.actor == people.carol and event.data == {"reason": "revoked", "comment": "wrong pod"}


def test_an_admin_ends_with_a_reason_and_the_requester_needs_none(people: Any, make_request: Any, api_client_for: Any) -> None:
    session = _session(people, make_request)
    assert api_client_for(people.admin).post(f"/api/v1/sessions/{session.pk}/end", {}, format="json").status_code == 400
    resp = api_client_for(people.admin).post(f"/api/v1/sessions/{session.pk}/end", {"reason": "policy"}, format="json")
    assert resp.status_code == 200 and resp.json()["end_reason"] == "admin"
    other = _session(people, make_request)
    assert api_client_for(people.alice).post(f"/api/v1/sessions/{other.pk}/end", {}, format="json").status_code == 200
    assert DebugSession.objects.get(pk=other.pk).end_reason == "user"


def test_the_session_page_form_revokes_and_shows_why(people: Any, make_request: Any) -> None:
    session = _session(people, make_request)
    bob, eve, alice = Client(), Client(), Client()
    bob.force_login(people.bob)
    eve.force_login(people.eve)
    alice.force_login(people.alice)
    page = bob.get(f"/sessions/{session.pk}/").content.decode()
    assert 'name="reason"' in page
    assert 'name="reason"' not in alice.get(f"/sessions/{session.pk}/").content.decode()
    assert eve.post(f"/sessions/{session.pk}/end", {"reason": "x"}).status_code == 404
    resp = bob.post(f"/sessions/{session.pk}/end", {"reason": ""})
    assert resp.status_code == 302 and DebugSession.objects.get(pk=session.pk).status == "provisioning"
    resp = bob.post(f"/sessions/{session.pk}/end", {"reason": "suspicious activity"})
    assert resp.status_code == 302
    assert DebugSession.objects.get(pk=session.pk).end_reason == "revoked"
    assert "suspicious activity" in alice.get(f"/sessions/{session.pk}/").content.decode()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_a_revoke_closes_the_terminal_with_the_reason(term_session: Any, term_users: Any) -> None:
    from rest_framework.test import APIClient

    from portal.tokens import create_token
    from sessions.bridge import protocol
    from tests.sessions.conftest import open_term
    from tests.sessions.test_terminal_lifetime import _ready, _wait_no_pids

    sid = str(term_session.pk)
    term, _ = await open_term(term_session, user=term_users.alice)
    try:
        await _ready(term)
        token = await sync_to_async(create_token)(term_users.bob, name="t")

        def revoke() -> int:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
            return client.post(f"/api/v1/sessions/{sid}/end", {"reason": "incident closed"}, format="json").status_code

        assert await sync_to_async(revoke)() == 200
        assert await term.until_closed(15) == protocol.CLOSE_GONE
        assert any("incident closed" in (s.get("message") or "") for s in term.statuses), term.statuses
    finally:
        await term.close()
    assert await _wait_no_pids(sid) == []
