"""Audit events in words (portal/audit_text.py), and on the session page's timeline."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from portal.audit_text import describe


def _event(action: str, actor: str = "", data: dict[str, Any] | None = None, ip: str | None = None) -> Any:
    return SimpleNamespace(action=action, actor_name=actor, data=data or {}, source_ip=ip)


def test_known_actions_are_sentences_with_labelled_fields() -> None:
    said = describe(_event("request.approval_recorded", "bob", {"comment": "ok", "approvals": 1, "approvals_required": 2,
                                                                 "approver_proof": {"method": "sso", "security_key": "blue"}},
                           "10.0.0.7"))
    assert said.sentence == "bob approved"
    assert said.fields == [("Comment", "ok"), ("Approvals", "1"), ("Approvals needed", "2"),
                           ("How the approver proved themselves", "method: sso; security key: blue"), ("From", "10.0.0.7")]


def test_moments_in_the_data_read_as_utc_times() -> None:
    said = describe(_event("session.extended", "bob", {"expires_at": "2026-12-07T04:09:03.312731+00:00",
                                                       "authenticated_at": "2026-12-07T03:54:01Z"}))
    assert said.fields == [("Ends at", "2026-12-07 04:09:03 UTC"), ("Authenticated at", "2026-12-07 03:54:01 UTC")]


def test_the_system_is_named_and_unknown_actions_still_read() -> None:
    assert describe(_event("session.provisioned")).sentence == "Ephemera started the debug container"
    assert describe(_event("session.ended", data={"reason": "", "by": None})).fields == []  # empty values left out
    assert describe(_event("session.connected", "alice", ip="127.0.0.1")).fields == [("From", "127.0.0.1 (the portal's own machine)")]
    odd = describe(_event("session.something_new", "", {"flag": True, "names": ["a", "b"]}))
    assert odd.sentence == "Session: something new (Ephemera)"
    assert odd.fields == [("Flag", "yes"), ("Names", "a, b")]


@pytest.mark.django_db
def test_the_session_timeline_shows_sentences_not_dict_text(alice: Any, dave: Any, make_request: Any) -> None:
    from tests.sessions.test_review import ended_session

    session = ended_session(alice, make_request)
    from django.db import transaction

    from portal.audit import record_event

    with transaction.atomic():
        record_event(action="session.ended", actor=None, request=session.request, session=session,
                     data={"reason": "time limit", "ended_at": timezone.now().isoformat()})
    client = Client()
    client.force_login(dave)
    html = client.get(f"/sessions/{session.pk}/").content.decode()
    timeline = html[html.index('id="audit-timeline"'):html.index("</ol>", html.index('id="audit-timeline"'))]
    assert "The session ended" in timeline and "<dt>Reason</dt><dd>time limit</dd>" in timeline
    assert "{&#x27;" not in timeline and "{'" not in timeline  # no Python dict text
    assert "system" not in timeline
