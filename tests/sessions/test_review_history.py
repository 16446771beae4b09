"""The session history page: who sees which sessions, every filter, and constant queries per page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals.models import DebugRequest
from sessions.models import DebugSession
from sessions.recording.models import SessionCommand
from sessions.review.models import SessionReview


def make_sessions(requester: Any, n: int, *, start: int = 0, **fields: Any) -> list[DebugSession]:
    """`n` ended sessions with a command each, in bulk (what the history reads)."""
    now = timezone.now()
    reqs = DebugRequest.objects.bulk_create(
        DebugRequest(
            requester=requester,
            created_at=now - timedelta(minutes=i),
            namespace=fields.get("namespace", "default"),
            pod=fields.get("pod", f"web-{i}"),
            container="app",
            node=fields.get("node", ""),
            cluster=fields.get("cluster", "default"),
            image="busybox",
            profile=fields.get("profile", "general"),
            reason="r",
            duration_minutes=10,
            status="approved",
            expires_at=now,
        )
        for i in range(start, start + n)
    )
    sessions = DebugSession.objects.bulk_create(
        DebugSession(
            request=r,
            created_at=r.created_at,
            namespace=r.namespace,
            pod=r.pod,
            container_name="debugger-x",
            status=fields.get("status", "ended"),
        )
        for r in reqs
    )
    SessionCommand.objects.bulk_create(
        SessionCommand(session=s, t=1.0, text=fields.get("command", f"ls /tmp/{i}")) for i, s in enumerate(sessions)
    )
    return sessions


def _get(user: Any, /, **params: Any) -> Any:
    client = Client()
    client.force_login(user)
    return client.get("/sessions/history/", params)


def _ids(resp: Any) -> set[str]:
    return {str(s.pk) for s in resp.context["page"].object_list}


def test_the_query_count_stays_constant_as_sessions_grow(db: Any, alice: Any, dave: Any) -> None:
    client = Client()
    client.force_login(dave)
    # The sign-in's first request also stamps the web session's activity (a write, at most
    # once a minute): not a cost of the page, so it is paid before counting.
    client.get("/sessions/history/")
    counts = []
    for total in (10, 200):
        make_sessions(alice, total - DebugSession.objects.count(), start=DebugSession.objects.count())
        with CaptureQueriesContext(connection) as ctx:
            resp = client.get("/sessions/history/", {"command": "ls", "reviewed": "no", "namespace": "default"})
        assert resp.status_code == 200
        assert resp.context["page"].paginator.count == total
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1], counts
    assert counts[1] <= 10, counts  # session, user, roles, the page


def test_a_requester_sees_only_their_own_sessions(db: Any, alice: Any, eve: Any, dave: Any, admin_user: Any) -> None:
    mine = make_sessions(alice, 3)
    theirs = make_sessions(eve, 2, start=10)
    assert _ids(_get(alice)) == {str(s.pk) for s in mine}
    assert _ids(_get(alice, user="eve")) == set()  # the user filter can't widen the scope
    assert _ids(_get(dave)) == {str(s.pk) for s in mine + theirs}
    assert _ids(_get(admin_user, user="eve")) == {str(s.pk) for s in theirs}


def test_every_filter_narrows_the_list(db: Any, alice: Any, eve: Any, dave: Any) -> None:
    base = make_sessions(alice, 2)
    payments = make_sessions(alice, 1, start=5, namespace="payments", pod="checkout-7d9", command="curl -s localhost:8080/health")
    node = make_sessions(eve, 1, start=6, node="worker-2", pod="", cluster="prod-eu", status="failed")
    SessionReview.objects.create(session=base[0], reviewer=dave, note="ok", created_at=timezone.now())
    old = base[1]
    DebugSession.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=30))
    ids = lambda items: {str(s.pk) for s in items}  # noqa: E731
    assert _ids(_get(dave, namespace="payments")) == ids(payments)
    assert _ids(_get(dave, pod="checkout")) == ids(payments)
    assert _ids(_get(dave, node="worker-2")) == ids(node)
    assert _ids(_get(dave, cluster="prod-eu")) == ids(node)
    assert _ids(_get(dave, status="failed")) == ids(node)
    assert _ids(_get(dave, user="eve")) == ids(node)
    assert _ids(_get(dave, reviewed="yes")) == ids(base[:1])
    assert _ids(_get(dave, reviewed="no")) == ids(base[1:] + payments + node)
    assert _ids(_get(dave, command="CURL -s")) == ids(payments)
    since = (timezone.now() - timedelta(days=1)).date().isoformat()
    assert _ids(_get(dave, since=since)) == ids(base[:1] + payments + node)
    assert _ids(_get(dave, until=(timezone.now() - timedelta(days=20)).date().isoformat())) == ids([old])


def test_the_profile_filter_and_column_and_the_matching_command(db: Any, alice: Any, dave: Any) -> None:
    general = make_sessions(alice, 2)
    (admin,) = make_sessions(alice, 1, start=5, profile="sysadmin", command="chroot /host systemctl restart kubelet")
    ids = lambda items: {str(s.pk) for s in items}  # noqa: E731
    assert _ids(_get(dave, profile="sysadmin")) == ids([admin])
    assert _ids(_get(dave, profile="general")) == ids(general)
    assert _ids(_get(dave, profile="root")) == ids(general + [admin])  # not a profile: ignored
    page = _get(dave).content.decode()
    assert "<th scope=\"col\">Profile</th>" in page and "<td>sysadmin</td>" in page and "Matching command" not in page
    found = _get(dave, command="systemctl")
    assert "Matching command" in found.content.decode()
    assert [s.matched_command for s in found.context["page"].object_list] == ["chroot /host systemctl restart kubelet"]
    assert '<code class="matched-command">chroot /host systemctl restart kubelet</code>' in found.content.decode()


@pytest.mark.parametrize("params", [{"status": "nonsense"}, {"since": "31/12/2026"}, {"reviewed": "maybe"}, {"page": "x"}])
def test_bad_filter_values_are_ignored_not_errors(db: Any, alice: Any, dave: Any, params: dict[str, str]) -> None:
    make_sessions(alice, 2)
    resp = _get(dave, **params)
    assert resp.status_code == 200 and resp.context["page"].paginator.count == 2


def test_the_page_links_each_session_and_shows_its_facts(db: Any, alice: Any, dave: Any) -> None:
    (session,) = make_sessions(alice, 1, namespace="payments", pod="checkout-1")
    html = _get(dave).content.decode()
    assert f'href="/sessions/{session.pk}/"' in html and "payments/checkout-1:app" in html and "alice" in html
