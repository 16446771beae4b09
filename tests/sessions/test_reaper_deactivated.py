"""The reaper ends the running sessions of a deactivated account, and stops their shells."""

from __future__ import annotations

from typing import Any

from portal.models import AuditEvent
from sessions.choices import EndReason, SessionStatus
from sessions.reaper import reap_once
from tests.sessions.test_provision import session_pids
from tests.sessions.test_reaper import running_session, wait_until


def test_it_ends_the_sessions_of_a_deactivated_requester(alice: Any, bob: Any, nginx_pod: str) -> None:
    session = running_session(alice, bob, nginx_pod)
    assert reap_once().requester_deactivated == 0  # an active requester's session is left alone
    alice.is_active = False
    alice.save()
    report = reap_once()
    assert report.requester_deactivated == 1 and report.any()
    session.refresh_from_db()
    assert session.status == SessionStatus.ENDED and session.end_reason == EndReason.ADMIN
    assert session.ended_by is None and "deactivated" in session.end_comment
    event = AuditEvent.objects.get(session=session, action="session.ended")
    assert event.actor is None and "deactivated" in event.data["comment"]  # the system
    assert wait_until(lambda: not session_pids(session.pk)), "the debug shell should be stopped"
    assert reap_once().requester_deactivated == 0  # once
