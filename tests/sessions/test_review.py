"""The review parts of the session page, marking reviewed (audited), and who sees what."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from portal.audit import verify_chain
from portal.models import AuditEvent
from sessions.models import DebugSession
from sessions.recording import services as recording_services
from sessions.recording.recorder import Recorder
from sessions.review.models import SessionReview


def ended_session(
    requester: Any, make_request: Any, *, commands: tuple[str, ...] = ("ls -l", "cat /etc/hosts"), **req: Any
) -> DebugSession:
    """An ended session with a recording (written through the recorder and the real writer)."""
    request = make_request(requester, status="approved", **req)
    session = DebugSession.objects.create(
        request=request,
        created_at=timezone.now(),
        namespace=request.namespace or "default",
        pod=request.pod or "p",
        container_name="debugger-x",
        status="ended",
        ended_at=timezone.now(),
    )
    rec = Recorder(str(session.pk), record_input=True)
    rec.resize(80, 24)
    for c in commands:
        rec.input(f"{c}\r".encode())
        rec.output(f"$ {c}\r\noutput of {c}\r\n".encode())
    recording_services.recording_append(session_id=str(session.pk), batch=rec.take(), records_input=True)
    return session


def _page(user: Any, session: DebugSession) -> Any:
    client = Client()
    client.force_login(user)
    return client.get(f"/sessions/{session.pk}/")


def test_the_auditor_sees_replay_commands_timeline_and_the_review_form(db: Any, alice: Any, dave: Any, make_request: Any) -> None:
    session = ended_session(alice, make_request)
    resp = _page(dave, session)
    html = resp.content.decode()
    assert resp.status_code == 200
    assert 'id="replay"' in html and "ephemera/replay.js" in html and 'id="command-list"' in html
    assert 'data-command-index="1"' in html and "cat /etc/hosts" in html
    data = json.loads(html.split('id="replay-data" type="application/json">')[1].split("</script>")[0])
    assert data["cast_url"] == f"/api/v1/sessions/{session.pk}/recording.cast"
    assert [c["text"] for c in data["commands"]] == ["ls -l", "cat /etc/hosts"]
    assert 'id="audit-timeline"' in html and f'action="/sessions/{session.pk}/review"' in html
    assert "debugging a 502" in html  # why it was asked


def test_the_requester_sees_the_replay_but_cannot_review(db: Any, alice: Any, make_request: Any) -> None:
    html = _page(alice, ended_session(alice, make_request)).content.decode()
    assert 'id="replay"' in html and 'id="audit-timeline"' in html
    assert "review-note" not in html


def test_an_approver_sees_neither_recording_nor_commands(db: Any, alice: Any, bob: Any, make_request: Any) -> None:
    session = ended_session(alice, make_request, commands=("echo secret-command",))
    html = _page(bob, session).content.decode()
    assert _page(bob, session).status_code == 200
    assert 'id="replay"' not in html and "secret-command" not in html and "audit-timeline" not in html
    assert "review-note" not in html


def test_a_stranger_gets_404(db: Any, alice: Any, eve: Any, make_request: Any) -> None:
    assert _page(eve, ended_session(alice, make_request)).status_code == 404


def test_marking_reviewed_is_stored_and_audited(db: Any, alice: Any, dave: Any, make_request: Any) -> None:
    session = ended_session(alice, make_request)
    client = Client()
    client.force_login(dave)
    resp = client.post(f"/sessions/{session.pk}/review", {"note": "checked: only read-only commands"})
    assert resp.status_code == 302
    review = SessionReview.objects.get(session=session)
    assert (review.reviewer, review.note) == (dave, "checked: only read-only commands")
    event = AuditEvent.objects.get(session=session, action="session.reviewed")
    assert event.actor == dave and event.data == {"note": "checked: only read-only commands"}
    verify_chain()
    assert "checked: only read-only commands" in _page(dave, session).content.decode()


@pytest.mark.parametrize("who", ["alice", "bob", "eve"])
def test_only_auditors_and_admins_may_mark_reviewed(db: Any, people: Any, make_request: Any, who: str) -> None:
    session = ended_session(people.alice, make_request)
    client = Client()
    client.force_login(getattr(people, who))
    client.post(f"/sessions/{session.pk}/review", {"note": "looks fine"})
    assert not SessionReview.objects.exists()
    assert not AuditEvent.objects.filter(action="session.reviewed").exists()


def test_a_review_needs_a_note_and_an_ended_session(db: Any, alice: Any, admin_user: Any, make_request: Any) -> None:
    session = ended_session(alice, make_request)
    client = Client()
    client.force_login(admin_user)
    client.post(f"/sessions/{session.pk}/review", {"note": "   "})
    DebugSession.objects.filter(pk=session.pk).update(status="running")
    client.post(f"/sessions/{session.pk}/review", {"note": "too early"})
    assert not SessionReview.objects.exists()
    DebugSession.objects.filter(pk=session.pk).update(status="ended")
    client.post(f"/sessions/{session.pk}/review", {"note": "fine"})
    assert SessionReview.objects.count() == 1


@pytest.mark.parametrize("who,code", [("bob", 200), ("dave", 200), ("admin", 200), ("alice", 403), ("eve", 404)])
def test_the_watch_page_is_for_approvers_auditors_and_admins(
    db: Any, people: Any, make_request: Any, who: str, code: int
) -> None:
    session = ended_session(people.alice, make_request)
    DebugSession.objects.filter(pk=session.pk).update(status="running")
    client = Client()
    client.force_login(getattr(people, who))
    resp = client.get(f"/sessions/{session.pk}/watch")
    assert resp.status_code == code
    if code == 200:
        assert f'data-ws-path="/ws/sessions/{session.pk}/watch"' in resp.content.decode()
        assert 'id="watch-live"' in _page(getattr(people, who), session).content.decode()


def test_an_ended_session_cannot_be_watched(db: Any, alice: Any, bob: Any, make_request: Any) -> None:
    session = ended_session(alice, make_request)
    client = Client()
    client.force_login(bob)
    assert client.get(f"/sessions/{session.pk}/watch").status_code == 403
