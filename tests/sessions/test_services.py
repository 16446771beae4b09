"""Session services: the state machine, live progress events, connect/disconnect audit, and
the whole path through the provisioner thread with real commits."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from approvals import services as request_services
from portal.audit import AuditOrigin, verify_chain
from portal.events import session_group
from portal.models import AuditEvent
from sessions import services
from sessions.choices import SESSION_MOVES, EndReason, SessionStatus
from sessions.models import DebugSession
from tests.conftest import TARGET_CONTAINER


def test_the_session_state_machine() -> None:
    assert SESSION_MOVES[SessionStatus.PROVISIONING] == {SessionStatus.RUNNING, SessionStatus.FAILED, SessionStatus.ENDED}
    assert SESSION_MOVES[SessionStatus.RUNNING] == {SessionStatus.ENDED, SessionStatus.FAILED}
    assert SESSION_MOVES[SessionStatus.ENDED] == frozenset() and SESSION_MOVES[SessionStatus.FAILED] == frozenset()


@pytest.mark.parametrize("final", [SessionStatus.ENDED, SessionStatus.FAILED])
def test_final_sessions_dont_move(final: str, people: Any, make_request: Any) -> None:
    req = make_request(people.alice)
    request_services.request_approve(request_id=req.pk, approver=people.bob, origin=None)
    session = DebugSession.objects.get(request=req)
    DebugSession.objects.filter(pk=session.pk).update(status=final)
    before = AuditEvent.objects.count()
    assert services.session_end(session_id=session.pk, actor=people.alice, reason=EndReason.USER).status == final
    services.session_provision(session_id=session.pk)  # a no-op: not provisioning any more
    assert DebugSession.objects.get(pk=session.pk).status == final
    assert AuditEvent.objects.count() == before
    with pytest.raises(services.SessionConflict):
        services._move(DebugSession.objects.get(pk=session.pk), SessionStatus.RUNNING)


def test_an_unknown_end_reason_is_refused(people: Any, make_request: Any) -> None:
    req = make_request(people.alice)
    request_services.request_approve(request_id=req.pk, approver=people.bob, origin=None)
    with pytest.raises(ValueError):
        services.session_end(session_id=req.session.pk, actor=people.alice, reason="because")


def _running(people: Any, make_request: Any) -> DebugSession:
    req = make_request(people.alice)
    request_services.request_approve(request_id=req.pk, approver=people.bob, origin=None)
    now = timezone.now()
    DebugSession.objects.filter(request=req).update(
        status=SessionStatus.RUNNING, started_at=now, expires_at=now + timedelta(minutes=5)
    )
    return DebugSession.objects.get(request=req)


def test_connect_is_audited_and_only_for_the_requester(people: Any, make_request: Any) -> None:
    session = _running(people, make_request)
    origin = AuditOrigin("192.0.2.9", "xterm")
    for other in (people.bob, people.dave, people.eve):
        with pytest.raises(PermissionDenied):
            services.session_connected(session_id=session.pk, user=other, origin=origin)
    services.session_connected(session_id=session.pk, user=people.alice, origin=origin)
    services.session_disconnected(session_id=session.pk, user=people.alice, origin=origin)
    events = list(AuditEvent.objects.filter(session=session).values_list("action", "actor_name", "source_ip").order_by("id"))
    assert events[-2:] == [("session.connected", "alice", "192.0.2.9"), ("session.disconnected", "alice", "192.0.2.9")]


def test_progress_and_outcome_are_published_to_the_session_group(
    people: Any, nginx_pod: str, django_capture_on_commit_callbacks: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr("sessions.provisioner.start", lambda session_id: None)
    req = request_services.request_create(
        requester=people.alice,
        namespace="default",
        pod=nginx_pod,
        container=TARGET_CONTAINER,
        image="busybox",
        profile="general",
        reason="r",
        duration_minutes=5,
        origin=None,
    )
    request_services.request_approve(request_id=req.pk, approver=people.bob, origin=None)
    session = DebugSession.objects.get(request=req)
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(session_group(session.pk), channel)
    with django_capture_on_commit_callbacks(execute=True):
        services.session_provision(session_id=session.pk)
    messages = []
    while True:
        try:
            messages.append(async_to_sync(_receive_now)(layer, channel))
        except TimeoutError:
            break
    assert all(m["type"] == "session.changed" and m["id"] == str(session.pk) for m in messages)
    progress = [m["progress"] for m in messages]
    assert progress[0] == f"checking pod default/{nginx_pod}" and any(p.startswith("adding debug container") for p in progress)
    assert messages[-1]["status"] == "running"
    services.session_end(session_id=session.pk, actor=people.alice, reason=EndReason.USER)


async def _receive_now(layer: Any, channel: str) -> dict[str, Any]:
    import asyncio

    return await asyncio.wait_for(layer.receive(channel), 0.5)


@pytest.mark.django_db(transaction=True)
def test_approving_over_the_api_provisions_in_the_background(kube: Any, api_client_for: Any, settings: Any) -> None:
    from django.contrib.auth.models import Group, User

    from portal.kube import get_client

    alice = User.objects.create_user("alice")
    bob = User.objects.create_user("bob")
    bob.groups.add(Group.objects.get_or_create(name=settings.EPHEMERA_APPROVER_GROUP)[0])
    pod = next(p.name for p in get_client().list_pods("default") if p.name.startswith("distroless-nginx-"))
    created = api_client_for(alice).post(
        "/api/v1/requests",
        {
            "namespace": "default",
            "pod": pod,
            "container": TARGET_CONTAINER,
            "image": "busybox",
            "profile": "general",
            "reason": "r",
            "duration_minutes": 5,
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    approved = api_client_for(bob).post(f"/api/v1/requests/{created.json()['id']}/approve", {}, format="json")
    assert approved.status_code == 200, approved.content
    session_id = approved.json()["session"]["id"]
    deadline = time.monotonic() + 30
    status = ""
    while time.monotonic() < deadline:
        status = api_client_for(alice).get(f"/api/v1/sessions/{session_id}").json()["status"]
        if status != "provisioning":
            break
        time.sleep(0.1)
    assert status == "running"
    ended = api_client_for(alice).post(f"/api/v1/sessions/{session_id}/end")
    assert ended.status_code == 200 and ended.json()["status"] == "ended"
    # The end answered at once; the cluster side is confirmed in the background.
    from sessions import cluster_stop

    assert cluster_stop.join_background(30)
    actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
    assert actions == [
        "user.group_added",  # bob made an approver above: a role change, audited (portal.role_audit)
        "policy.loaded",  # the first request under this policy records it
        "request.created",
        "request.approval_recorded",
        "request.approved",
        "session.created",
        "session.provisioned",
        "session.ended",
        "session.cluster_clean",  # the debug container's status said terminated
    ]
    verify_chain()


def test_ending_publishes_the_reason(people: Any, make_request: Any, django_capture_on_commit_callbacks: Any) -> None:
    req = make_request(people.alice)
    request_services.request_approve(request_id=req.pk, approver=people.bob, origin=None)
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(session_group(req.session.pk), channel)
    with django_capture_on_commit_callbacks(execute=True):
        services.session_end(session_id=req.session.pk, actor=people.bob, reason=EndReason.REVOKED, comment="incident over")
    message = async_to_sync(_receive_now)(layer, channel)
    assert message == {
        "type": "session.changed",
        "id": str(req.session.pk),
        "status": "ended",
        "progress": "ended",
        "message": "Revoked by an approver (bob): incident over",
    }
