"""The cluster's own audit log says whom each debug action was for (issue 15).

Ephemera acts with its service account; every call it makes for a session carries
`ephemera/<version> (session <id>; for <requester>)` as its User-Agent, which the apiserver's
audit log keeps (kubesim writes the same audit.k8s.io Event, userAgent included).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from approvals import services as request_services
from kubesim.testing import RunningCluster, run_cluster
from portal.kube.useragent import BASE, for_requester, for_session
from sessions import services
from sessions.choices import EndReason, SessionStatus
from sessions.models import DebugSession
from tests.conftest import TARGET_CONTAINER, _forget, _point_at
from tests.sessions.conftest import create_running_session, open_term

pytestmark = [pytest.mark.timeout(120)]


@pytest.fixture
def audited(tmp_path: Path, settings: Any) -> Iterator[tuple[RunningCluster, Path]]:
    log = tmp_path / "audit.log"
    with run_cluster(tmp_path / "cluster", audit_log=log) as cluster:
        _point_at(cluster, settings)
        try:
            yield cluster, log
        finally:
            _forget()


def _events(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def _agents(log: Path, *, pod: str, verb: str, subresource: str = "", wait: float = 10.0) -> set[str]:
    """The User-Agents of those calls. The apiserver logs a call when its response is complete
    (for a websocket: once it closed, which may be just after the client saw it close)."""
    deadline = time.monotonic() + wait
    while True:
        found = {e["userAgent"] for e in _events(log)
                 if e["verb"] == verb and e.get("objectRef", {}).get("name") == pod
                 and e.get("objectRef", {}).get("subresource", "") == subresource}
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def _until_running(session: DebugSession) -> DebugSession:
    """Committed (transactional_db): the provisioner's own thread runs it, as in the portal."""
    deadline = time.monotonic() + 60
    while True:
        services.session_provision(session_id=session.pk)  # a no-op once that thread has claimed it
        session.refresh_from_db()
        if session.status != SessionStatus.PROVISIONING or time.monotonic() > deadline:
            return session
        time.sleep(0.2)


# transactional_db: the stop runs on a thread of its own, which must see the session's rows.
def test_provisioning_and_the_stop_say_whom_they_are_for(transactional_db: Any, audited: tuple[RunningCluster, Path],
                                                          alice: Any, bob: Any) -> None:
    _, log = audited
    from portal.kube import get_client

    pod = next(p.name for p in get_client().list_pods("default") if p.name.startswith("distroless-nginx-"))
    req = request_services.request_create(requester=alice, namespace="default", pod=pod, container=TARGET_CONTAINER,
                                          image="busybox", profile="general", reason="ua", duration_minutes=15, origin=None)
    request_services.request_approve(request_id=req.pk, approver=bob, origin=None)
    session = _until_running(DebugSession.objects.get(request=req))
    assert session.status == SessionStatus.RUNNING, session.failure_message
    services.session_end(session_id=session.pk, actor=alice, reason=EndReason.USER)
    from sessions import cluster_stop

    assert cluster_stop.join_background(30)

    mine = for_session(session.pk, "alice")
    assert mine == f"{BASE} (session {session.pk}; for alice)"
    # The real PATCH (the request's dry run came before there was a session: it names the requester).
    assert _agents(log, pod=pod, verb="patch", subresource="ephemeralcontainers") == {mine, for_requester("alice")}
    assert _agents(log, pod=pod, verb="get", subresource="exec") == {mine}  # the stop (a websocket upgrade is a GET)
    # The request's own checks (its pod lookup, its dry run) came before the session: they name
    # the requester; the oversight scan is for no one.
    from sessions.oversight import scan

    scan()
    assert [e["userAgent"] for e in _events(log) if e["verb"] == "list" and "fieldSelector" not in e["requestURI"]
            and "labelSelector" not in e["requestURI"]][-1] == BASE


def test_a_node_pods_create_and_delete_say_whom_they_are_for(transactional_db: Any, audited: tuple[RunningCluster, Path],
                                                              alice: Any, bob: Any, settings: Any) -> None:
    _, log = audited
    req = request_services.request_create(requester=alice, kind="node", node="debian-11", image="busybox",
                                          profile="general", reason="ua", duration_minutes=15, origin=None)
    request_services.request_approve(request_id=req.pk, approver=bob, origin=None)
    session = _until_running(DebugSession.objects.get(request=req))
    assert session.status == SessionStatus.RUNNING, session.failure_message
    services.session_end(session_id=session.pk, actor=alice, reason=EndReason.USER)
    from sessions import cluster_stop

    assert cluster_stop.join_background(30)
    mine = for_session(session.pk, "alice")
    creates = {e["userAgent"] for e in _events(log) if e["verb"] == "create" and e["objectRef"].get("resource") == "pods"
               and not e["objectRef"].get("subresource")}
    assert creates == {mine, for_requester("alice")}  # the pod, and the request's dry run of it
    assert _agents(log, pod=session.pod, verb="delete") == {mine}


def test_a_copys_create_delete_and_its_file_reads_say_whom_they_are_for(
    transactional_db: Any, audited: tuple[RunningCluster, Path], alice: Any, bob: Any
) -> None:
    from rest_framework.test import APIClient

    from tests.sessions.test_files import body

    _, log = audited
    req = request_services.request_create(requester=alice, kind="copy", namespace="payments",
                                          pod="payments-api-5f7b9c6d4-q8wzt", container="api", image="busybox",
                                          profile="general", reason="ua", duration_minutes=15, origin=None, copy={})
    request_services.request_approve(request_id=req.pk, approver=bob, origin=None)
    session = _until_running(DebugSession.objects.get(request=req))
    assert session.status == SessionStatus.RUNNING, session.failure_message
    files = APIClient()
    files.force_authenticate(alice)
    resp = files.get(f"/api/v1/sessions/{session.pk}/files", {"path": "/etc/passwd"})
    assert resp.status_code == 200, getattr(resp, "data", resp)
    assert b"root:" in body(resp)
    services.session_end(session_id=session.pk, actor=alice, reason=EndReason.USER)
    from sessions import cluster_stop

    assert cluster_stop.join_background(30)
    mine = for_session(session.pk, "alice")
    creates = {e["userAgent"] for e in _events(log) if e["verb"] == "create" and e["objectRef"].get("resource") == "pods"
               and not e["objectRef"].get("subresource")}
    assert creates == {mine, for_requester("alice")}  # the copy, and the request's dry run of it
    # The file's lookup, stat and read, and the stop: each an exec in the copy's debug container.
    assert _agents(log, pod=session.pod, verb="get", subresource="exec") == {mine}
    assert len([e for e in _events(log) if e["verb"] == "get" and e["objectRef"].get("subresource") == "exec"]) >= 3
    assert _agents(log, pod=session.pod, verb="delete") == {mine}


@pytest.mark.asyncio
async def test_the_terminals_attach_says_whom_it_is_for(audited: tuple[RunningCluster, Path],
                                                         term_users: SimpleNamespace) -> None:
    _, log = audited
    session = await sync_to_async(create_running_session)(term_users)
    term, connected = await open_term(session, user=term_users.alice)
    try:
        assert connected
        await term.until(lambda: any(s["event"] == "connected" for s in term.statuses))
        # Ending the session closes the attach; the apiserver logs a websocket's call once it closed.
        await sync_to_async(services.session_end)(session_id=session.pk, actor=term_users.alice, reason=EndReason.USER)
        await term.until_closed(15)
    finally:
        await term.close()
    agents = await sync_to_async(_agents, thread_sensitive=False)(log, pod=session.pod, verb="get", subresource="attach",
                                                                   wait=20)
    assert agents == {for_session(session.pk, "alice")}


def test_a_username_cant_forge_the_format() -> None:
    assert for_session("s1", "mallory); for (admin") == f"{BASE} (session s1; for mallory___for__admin)"
