"""Ending a session ends its debug container, and the cluster confirms it.

The attack (issue: hardening, item 1): a root shell under the default `general` profile
removed the EPHEMERA_SESSION marker from its processes (it overwrote it in /proc/PID/mem; a
process started without it, or a `setsid` daemon, is the same to the old stop), and a
background loop, the shell and `timeout` lived on after `POST .../end` answered 200. The
stop now kills by cgroup and counts only the pod status saying terminated.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone
from rest_framework.test import APIClient

from portal.kube import get_client
from portal.models import AuditEvent
from sessions.models import DebugSession, Finding
from sessions.reaper import reap_once
from tests.sessions.conftest import open_term, session_pids

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]

def _host_pids_running(needle: bytes) -> list[int]:
    """kubesim's containers are processes of this machine: find them by command line."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if needle in f.read():
                        pids.append(int(entry))
            except OSError:
                continue
    return pids


def _end_through_the_api(user: Any, session_id: Any) -> Any:
    client = APIClient()
    client.force_authenticate(user)
    return client.post(f"/api/v1/sessions/{session_id}/end", {}, format="json")


async def _wait(predicate: Any, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await sync_to_async(predicate)():
            return True
        await __import__("asyncio").sleep(0.2)
    return bool(await sync_to_async(predicate)())


async def test_processes_that_shed_the_session_marker_still_die_with_the_session(term_session: Any, term_users: Any) -> None:
    term, connected = await open_term(term_session, user=term_users.alice)
    assert connected
    try:
        await term.until(lambda: any(s["event"] == "connected" for s in term.statuses))
        # A daemon in a session of its own and a busy loop, then the marker overwritten in the
        # memory of every process that carries it (timeout, the shell, the loop), as the attack did.
        # (The debug shell has no Python now that kubesim's containers have their own root
        # filesystem, so the daemons are started without the marker instead of having it
        # rewritten in memory: to the old marker-based stop the two were the same.)
        assert session_pids(str(term_session.pk)), "the session's processes carry the marker"
        await term.run("env -u EPHEMERA_SESSION setsid sleep 4242.5 & "
                       "(while :; do env -u EPHEMERA_SESSION sleep 0.3; done) & true", "bg")
        assert await _wait(lambda: bool(_host_pids_running(b"4242.5")), 5), "the escaped sleep should be running"
        marked = set(session_pids(str(term_session.pk)))
        assert not marked & set(_host_pids_running(b"4242.5")), "the escaped sleep should not carry the marker"
        started = time.monotonic()
        resp = await sync_to_async(_end_through_the_api)(term_users.alice, term_session.pk)
        answered_in = time.monotonic() - started
        assert resp.status_code == 200, resp.content
        assert resp.json()["status"] == "ended"
    finally:
        await term.close()
    assert answered_in < 5, f"ending waited on the cluster for {answered_in:.1f}s"
    assert await _wait(lambda: not _host_pids_running(b"4242.5")), "a process that shed the marker outlived the session"
    assert await _wait(lambda: DebugSession.objects.get(pk=term_session.pk).cluster_clean_at is not None)
    state = await sync_to_async(get_client().ephemeral_container_state)(
        term_session.namespace, term_session.pod, term_session.container_name
    )
    assert state.state == "terminated"
    event = await sync_to_async(AuditEvent.objects.get)(session=term_session, action="session.cluster_clean")
    assert "terminated" in event.data["summary"]


async def test_a_debug_container_that_wont_die_is_retried_and_becomes_a_finding(
    term_session: Any, term_users: Any, term_kube: Any
) -> None:
    # What a root user who replaced the container's `sh` or kills every exec achieves: the stop
    # can't run. kubesim refuses every exec into the debug container here.
    term_kube.faults.add(500, path=f"/pods/{term_session.pod}/exec", message="exec is broken")
    try:
        await _refused_stop_becomes_a_finding(term_session, term_users, term_kube)
    finally:
        term_kube.faults.clear()


async def _refused_stop_becomes_a_finding(term_session: Any, term_users: Any, term_kube: Any) -> None:
    resp = await sync_to_async(_end_through_the_api)(term_users.alice, term_session.pk)
    assert resp.status_code == 200
    assert await _wait(lambda: "still stopping" in DebugSession.objects.get(pk=term_session.pk).progress)
    session = await sync_to_async(DebugSession.objects.get)(pk=term_session.pk)
    assert session.cluster_clean_at is None
    assert await sync_to_async(AuditEvent.objects.filter(session=session, action="session.stop_failed").exists)()
    # The reaper keeps trying; after a minute it is a finding (once), not before.
    report = await sync_to_async(reap_once)()
    assert report.marked_clean == 0 and report.errors
    assert not await sync_to_async(Finding.objects.filter(session=session).exists)()
    await sync_to_async(DebugSession.objects.filter(pk=session.pk).update)(ended_at=timezone.now() - timedelta(minutes=2))
    await sync_to_async(reap_once)()
    await sync_to_async(reap_once)()
    finding = await sync_to_async(Finding.objects.get)(session=session)
    assert finding.kind == "unstopped_session"
    assert await sync_to_async(
        AuditEvent.objects.filter(session=session, action="oversight.unstopped_session").count
    )() == 1
    # Once exec works again, the next pass ends it, confirms it, and the finding is gone.
    term_kube.faults.clear()
    report = await sync_to_async(reap_once)()
    assert report.marked_clean == 1, report
    finding = await sync_to_async(Finding.objects.get)(pk=finding.pk)
    assert finding.gone_at is not None
