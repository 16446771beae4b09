"""A hung cluster call holds nothing else up (hardening issue, item 10).

Before: the exec handshake had no timeout, so a revoke answered after 40 s and the reaper
ended the next expired session 51 s late. Here kubesim holds every exec into one pod for a
minute: the end answers at once, and the reaper's pass ends every expired session and cleans
the others while that one stop waits out its own timeout.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from approvals.services import request_approve, request_create
from sessions import cluster_stop
from sessions.models import DebugSession
from sessions.reaper import reap_once
from tests.sessions.conftest import create_running_session

pytestmark = pytest.mark.timeout(180)


def _running_node_session(users: Any) -> DebugSession:
    req = request_create(requester=users.alice, kind="node", node="debian-11", image="busybox", profile="general",
                         reason="hung cluster test", duration_minutes=15, origin=None)
    request_approve(request_id=req.pk, approver=users.bob, origin=None)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        session = DebugSession.objects.get(request=req)
        if session.status == "running":
            return session
        time.sleep(0.2)
    raise AssertionError("the node session never ran")


def _wait(predicate: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return bool(predicate())


def test_a_hung_exec_delays_neither_the_answer_nor_other_sessions(term_kube: Any, term_users: Any) -> None:
    hung = create_running_session(term_users)
    other = _running_node_session(term_users)
    revoked = create_running_session(term_users)
    assert revoked.pod == hung.pod  # the same distroless pod: its execs all hang below
    term_kube.faults.add(path=f"/pods/{hung.pod}/exec", delay=60)
    try:
        client = APIClient()
        client.force_authenticate(term_users.carol)
        started = time.monotonic()
        resp = client.post(f"/api/v1/sessions/{revoked.pk}/end", {"reason": "incident over"}, format="json")
        assert resp.status_code == 200 and resp.json()["status"] == "ended"
        assert time.monotonic() - started < 3, "a revoke must not wait on the cluster"

        DebugSession.objects.filter(pk__in=[hung.pk, other.pk]).update(expires_at=timezone.now() - timedelta(seconds=1))
        reaper = threading.Thread(target=reap_once)
        started = time.monotonic()
        reaper.start()
        # Both expired sessions are ended at once, and the node session is clean well before
        # the hung exec's stop gives up.
        assert _wait(lambda: set(DebugSession.objects.filter(pk__in=[hung.pk, other.pk]).values_list("status", flat=True))
                     == {"ended"}, 5)
        assert _wait(lambda: DebugSession.objects.get(pk=other.pk).cluster_clean_at is not None, 15)
        assert reaper.is_alive(), "the hung stop should still be waiting"
        reaper.join(60)
        assert not reaper.is_alive()
        took = time.monotonic() - started
        assert took < 45, f"the pass took {took:.0f}s: the hung exec was not bounded"
        assert DebugSession.objects.get(pk=hung.pk).cluster_clean_at is None  # not confirmed, so not clean
    finally:
        term_kube.faults.clear()
    # Once the cluster answers again the reaper finishes the job.
    assert cluster_stop.join_background(30), "the revoke's background stop should give up within its timeout"

    def reaped_clean() -> bool:
        reap_once()
        return not DebugSession.objects.filter(pk__in=[hung.pk, revoked.pk], cluster_clean_at__isnull=True).exists()

    assert _wait(reaped_clean, 60)
