"""The reaper against kubesim: time limits without a browser, and cleaning up after crashes."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from portal.kube import get_client
from portal.kube.sessions import stop_debug_container
from portal.models import AuditEvent
from sessions.choices import EndReason, SessionStatus
from sessions.models import DebugSession
from sessions.reaper import reap_once
from tests.concurrency import run_at_once
from tests.sessions.test_provision import approved_session, provision, session_pids


def wait_until(predicate: Any, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return bool(predicate())


def running_session(alice: Any, bob: Any, pod: str) -> DebugSession:
    session = provision(approved_session(alice, bob, pod))
    assert session.status == SessionStatus.RUNNING, session.failure_message
    assert wait_until(lambda: session_pids(session.pk)), "the debug shell should be running"
    return session


def test_it_ends_an_expired_session_and_stops_its_shell(alice: Any, bob: Any, nginx_pod: str) -> None:
    session = running_session(alice, bob, nginx_pod)
    DebugSession.objects.filter(pk=session.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    report = reap_once()
    assert report.sessions_expired == 1
    session.refresh_from_db()
    assert session.status == SessionStatus.ENDED and session.end_reason == EndReason.EXPIRED
    assert wait_until(lambda: not session_pids(session.pk))


def test_it_stops_a_shell_a_crash_left_running(alice: Any, bob: Any, nginx_pod: str) -> None:
    session = running_session(alice, bob, nginx_pod)
    # The portal wrote "ended" and died before it could kill the shell.
    DebugSession.objects.filter(pk=session.pk).update(status=SessionStatus.ENDED, ended_at=timezone.now(), end_reason="user")
    report = reap_once()
    assert report.processes_stopped == 1 and report.marked_clean == 1, report
    assert not session_pids(session.pk)
    # Clean on the cluster's word: the debug container's status says terminated.
    assert get_client().ephemeral_container_state(session.namespace, session.pod, session.container_name).state == "terminated"
    assert AuditEvent.objects.filter(session=session, action="session.cluster_clean").count() == 1
    session.refresh_from_db()
    assert session.cluster_clean_at is not None
    again = reap_once()
    assert again.processes_stopped == 0 and again.marked_clean == 0


def test_it_ends_a_session_whose_shell_exited(alice: Any, bob: Any, nginx_pod: str) -> None:
    session = running_session(alice, bob, nginx_pod)
    stop_debug_container(session.namespace, session.pod, session.container_name)
    assert wait_until(lambda: reap_once().sessions_gone == 1 or DebugSession.objects.get(pk=session.pk).status == SessionStatus.ENDED)
    session.refresh_from_db()
    assert session.status == SessionStatus.ENDED and session.end_reason == EndReason.CONTAINER_EXITED


def test_it_fails_provisioning_a_dead_portal_abandoned(alice: Any, bob: Any, nginx_pod: str, settings: Any) -> None:
    session = approved_session(alice, bob, nginx_pod)  # provisioning never ran: the portal died
    old = timezone.now() - timedelta(seconds=settings.EPHEMERA_PROVISION_TIMEOUT_SECONDS + 60)
    DebugSession.objects.filter(pk=session.pk).update(created_at=old)
    assert reap_once().provisioning_abandoned == 1
    session.refresh_from_db()
    assert session.status == SessionStatus.FAILED and "interrupted" in session.failure_message


def test_a_fresh_provisioning_session_is_left_alone(alice: Any, bob: Any, nginx_pod: str) -> None:
    session = approved_session(alice, bob, nginx_pod)
    assert reap_once().provisioning_abandoned == 0
    session.refresh_from_db()
    assert session.status == SessionStatus.PROVISIONING


@pytest.mark.django_db(transaction=True)
def test_two_reapers_at_once_end_a_session_once(kube: Any, settings: Any) -> None:
    from django.contrib.auth.models import Group, User

    from portal.kube import get_client

    alice = User.objects.create_user("alice", password="x")
    bob = User.objects.create_user("bob", password="x")
    bob.groups.add(Group.objects.get_or_create(name=settings.EPHEMERA_APPROVER_GROUP)[0])
    pod = next(p.name for p in get_client().list_pods("default") if p.name.startswith("distroless-nginx-"))
    # With real commits the approval starts the provisioning thread itself.
    session = approved_session(alice, bob, pod)
    assert wait_until(lambda: DebugSession.objects.get(pk=session.pk).status == SessionStatus.RUNNING, 30)
    assert wait_until(lambda: session_pids(session.pk)), "the debug shell should be running"
    DebugSession.objects.filter(pk=session.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    errors = run_at_once(reap_once, timeout=60)
    assert errors == []
    assert AuditEvent.objects.filter(session=session, action="session.ended").count() == 1
    assert wait_until(lambda: not session_pids(session.pk))


def test_run_reaper_once_runs_a_pass(alice: Any, bob: Any, nginx_pod: str, capsys: Any) -> None:
    session = running_session(alice, bob, nginx_pod)
    DebugSession.objects.filter(pk=session.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    call_command("run_reaper", "--once")
    assert "sessions_expired=1" in capsys.readouterr().out
    session.refresh_from_db()
    assert session.status == SessionStatus.ENDED
