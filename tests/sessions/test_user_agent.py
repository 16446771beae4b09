"""The cluster's own audit log says whom each debug action was for (issue 15).

Ephemera acts with its service account; every call it makes for a session carries
`ephemera/<version> (session <id>; for <requester>)` as its User-Agent, which the apiserver's
audit log keeps (kubesim writes the same audit.k8s.io Event, userAgent included).
"""

from __future__ import annotations

import asyncio
import json
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


def _agents(log: Path, *, pod: str, verb: str, subresource: str = "") -> set[str]:
    return {e["userAgent"] for e in _events(log)
            if e["verb"] == verb and e.get("objectRef", {}).get("name") == pod
            and e.get("objectRef", {}).get("subresource", "") == subresource}


def test_provisioning_and_the_stop_say_whom_they_are_for(audited: tuple[RunningCluster, Path], alice: Any, bob: Any) -> None:
    _, log = audited
    from portal.kube import get_client

    pod = next(p.name for p in get_client().list_pods("default") if p.name.startswith("distroless-nginx-"))
    req = request_services.request_create(requester=alice, namespace="default", pod=pod, container=TARGET_CONTAINER,
                                          image="busybox", profile="general", reason="ua", duration_minutes=15, origin=None)
    request_services.request_approve(request_id=req.pk, approver=bob, origin=None)
    session = DebugSession.objects.get(request=req)
    services.session_provision(session_id=session.pk)
    session.refresh_from_db()
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


def test_a_node_pods_create_and_delete_say_whom_they_are_for(audited: tuple[RunningCluster, Path], alice: Any,
                                                              bob: Any, settings: Any) -> None:
    _, log = audited
    req = request_services.request_create(requester=alice, kind="node", node="debian-11", image="busybox",
                                          profile="general", reason="ua", duration_minutes=15, origin=None)
    request_services.request_approve(request_id=req.pk, approver=bob, origin=None)
    session = DebugSession.objects.get(request=req)
    services.session_provision(session_id=session.pk)
    session.refresh_from_db()
    assert session.status == SessionStatus.RUNNING, session.failure_message
    services.session_end(session_id=session.pk, actor=alice, reason=EndReason.USER)
    from sessions import cluster_stop

    assert cluster_stop.join_background(30)
    mine = for_session(session.pk, "alice")
    creates = {e["userAgent"] for e in _events(log) if e["verb"] == "create" and e["objectRef"].get("resource") == "pods"
               and not e["objectRef"].get("subresource")}
    assert creates == {mine, for_requester("alice")}  # the pod, and the request's dry run of it
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
    finally:
        await term.close()
    # The apiserver logs a websocket's call when it ends (stage ResponseComplete): after the close.
    for _ in range(100):
        if _agents(log, pod=session.pod, verb="get", subresource="attach"):
            break
        await asyncio.sleep(0.1)
    assert _agents(log, pod=session.pod, verb="get", subresource="attach") == {for_session(session.pk, "alice")}


def test_a_username_cant_forge_the_format() -> None:
    assert for_session("s1", "mallory); for (admin") == f"{BASE} (session s1; for mallory___for__admin)"
