"""The session page as the server draws it, and the status.json the open page follows
(issue 9, bugs 3, 4 and 6)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from approvals.choices import RequestStatus
from sessions.choices import EndReason, ExtensionStatus, SessionStatus
from sessions.models import DebugSession, SessionExtension

pytestmark = pytest.mark.django_db


@pytest.fixture
def make_session(make_request: Any, alice: Any) -> Any:
    def make(status: str = SessionStatus.RUNNING, progress: str = "running", **fields: Any) -> DebugSession:
        now = timezone.now()
        req = make_request(alice, status=RequestStatus.APPROVED, decided_at=now)
        return DebugSession.objects.create(
            request=req,
            status=status,
            created_at=now,
            namespace="default",
            pod=req.pod,
            container_name="debugger-abcde",
            progress=progress,
            started_at=now,
            expires_at=now + timedelta(minutes=15),
            **fields,
        )

    return make


def page(user: Any, session: DebugSession) -> str:
    client = Client()
    client.force_login(user)
    resp = client.get(f"/sessions/{session.pk}/")
    assert resp.status_code == 200
    return resp.content.decode()


def test_a_live_session_never_says_its_terminal_was_never_opened(make_session: Any, alice: Any, dave: Any) -> None:
    # The page is drawn before the terminal connects: no recording yet is no news then.
    session = make_session()
    for user in (alice, dave):
        body = page(user, session)
        assert "the terminal was never opened" not in body
        assert "The replay appears when the session has ended." in body


def test_an_ended_session_without_a_recording_says_the_terminal_was_never_opened(make_session: Any, dave: Any) -> None:
    session = make_session(status=SessionStatus.ENDED, progress="ended", ended_at=timezone.now(), end_reason=EndReason.USER)
    assert "No recording: the terminal was never opened." in page(dave, session)


def test_the_status_row_says_running_once(make_session: Any, alice: Any, bob: Any) -> None:
    session = make_session()
    for user in (alice, bob):
        body = page(user, session)
        assert '<span id="session-progress" hidden>running</span>' in body


def test_provisioning_progress_is_shown_next_to_the_status(make_session: Any, alice: Any) -> None:
    session = make_session(status=SessionStatus.PROVISIONING, progress="adding debug container debugger-abcde")
    assert '<span id="session-progress">adding debug container debugger-abcde</span>' in page(alice, session)


def test_an_ended_session_shows_no_time_left(make_session: Any, alice: Any) -> None:
    session = make_session(status=SessionStatus.ENDED, progress="ended", ended_at=timezone.now(), end_reason=EndReason.REVOKED)
    body = page(alice, session)
    assert "none: the session is over" in body
    assert " UTC</span></dd>" not in body.split('id="session-countdown"')[1][:200]


def test_status_json_carries_the_extensions_and_their_decisions(make_session: Any, alice: Any, bob: Any) -> None:
    session = make_session()
    now = timezone.now()
    SessionExtension.objects.create(
        session=session,
        requester=alice,
        minutes=20,
        reason="the leak shows late",
        status=ExtensionStatus.APPROVED,
        created_at=now,
        decided_by=bob,
        decided_at=now,
        comment="ok",
    )
    client = Client()
    client.force_login(alice)
    data = client.get(f"/sessions/{session.pk}/status.json").json()
    assert data["status"] == "running" and data["cluster_clean"] is False
    assert [
        {k: e[k] for k in ("minutes", "status", "status_display", "decided_by", "comment", "reason")} for e in data["extensions"]
    ] == [
        {
            "minutes": 20,
            "status": "approved",
            "status_display": "Approved",
            "decided_by": "bob",
            "comment": "ok",
            "reason": "the leak shows late",
        }
    ]
