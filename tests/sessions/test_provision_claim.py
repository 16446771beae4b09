"""Two provisioners for one session (the on-commit thread and a retry): exactly one touches the cluster."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.contrib.auth.models import Group, User

from portal.kube import get_client
from portal.models import AuditEvent
from sessions import services
from sessions.choices import SessionStatus
from sessions.models import DebugSession
from tests.concurrency import run_at_once
from tests.sessions.test_provision import approved_session, session_pids


def _wait(predicate: Any, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return bool(predicate())


@pytest.mark.django_db(transaction=True)
def test_two_provisioners_at_once_add_one_container_and_keep_its_shell(kube: Any, settings: Any, monkeypatch: Any) -> None:
    from sessions import provisioner

    alice = User.objects.create_user("alice", password="x")
    bob = User.objects.create_user("bob", password="x")
    bob.groups.add(Group.objects.get_or_create(name=settings.EPHEMERA_APPROVER_GROUP)[0])
    pod = next(p.name for p in get_client().list_pods("default") if p.name.startswith("distroless-nginx-"))
    monkeypatch.setattr(provisioner, "start", lambda session_id: None)  # we run the provisioners ourselves
    session = approved_session(alice, bob, pod)
    before = set(get_client().get_pod("default", pod).ephemeral_container_names)

    errors = run_at_once(lambda: services.session_provision(session_id=session.pk), timeout=90)
    assert errors == []
    session.refresh_from_db()
    assert session.status == SessionStatus.RUNNING, session.failure_message
    added = set(get_client().get_pod("default", pod).ephemeral_container_names) - before
    assert added == {session.container_name}
    assert AuditEvent.objects.filter(session=session, action="session.provisioned").count() == 1
    # The loser must not have killed the winner's shell: it is still alive a moment later.
    assert _wait(lambda: session_pids(session.pk), 10)
    time.sleep(1.0)
    assert session_pids(session.pk), "the session's shell was killed by the second provisioner"
    services.session_end(session_id=session.pk, actor=alice, reason="user")
    assert _wait(lambda: not session_pids(session.pk), 15)


def test_a_claimed_session_is_not_provisioned_again(alice: Any, bob: Any, nginx_pod: str) -> None:
    session = approved_session(alice, bob, nginx_pod)
    DebugSession.objects.filter(pk=session.pk).update(provision_claim="someone-else")
    services.session_provision(session_id=session.pk)
    session.refresh_from_db()
    assert session.status == SessionStatus.PROVISIONING
    assert session.container_name not in get_client().get_pod("default", nginx_pod).ephemeral_container_names
