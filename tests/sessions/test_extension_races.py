"""An extension decided while the session is ended or revoked, with real transactions.

On PostgreSQL (.ci/run's second pass) the two used to lock in opposite orders (extension then
session, session then extensions) and deadlocked: a 500, and once the revoke lost and the
session ran on, extended. Runs on SQLite too, where writers serialize.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from approvals.choices import RequestStatus
from portal.audit import verify_chain
from sessions import cluster_stop, extensions, services
from sessions.choices import EndReason, ExtensionStatus, SessionStatus
from sessions.models import DebugSession, SessionExtension
from tests.concurrency import run_at_once

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def no_cluster(monkeypatch: Any) -> None:
    """What's raced here is the database; the cluster stop after the end is another test's."""
    monkeypatch.setattr("sessions.cluster_stop.stop_target", lambda target: cluster_stop.StopOutcome(True, "not raced here"))


def _running_with_pending_extension(make_request: Any, settings: Any, n: int) -> tuple[DebugSession, SessionExtension]:
    alice = User.objects.get_or_create(username="alice")[0]
    req = make_request(alice, status=RequestStatus.APPROVED, reason=f"race {n}")
    now = timezone.now()
    session = DebugSession.objects.create(
        request=req, status=SessionStatus.RUNNING, created_at=now, started_at=now,
        expires_at=now + timedelta(minutes=15), namespace="default", pod="distroless-nginx-x", container_name="debugger-x",
    )
    ext = SessionExtension.objects.create(session=session, requester=alice, minutes=10, reason="more", created_at=now)
    return session, ext


def _one_of_each(*calls: Callable[[], object]) -> Callable[[], object]:
    """For run_at_once: each thread takes the next call (list_iterator's next is atomic)."""
    queue = iter(calls)
    return lambda: next(queue)()


@pytest.mark.usefixtures("no_cluster")
def test_an_extension_approval_racing_a_revoke_never_deadlocks_and_the_revoke_holds(make_request: Any, settings: Any) -> None:
    bob = User.objects.create_user(username="bob")
    carol = User.objects.create_user(username="carol")
    approvers = Group.objects.get_or_create(name=settings.EPHEMERA_APPROVER_GROUP)[0]
    bob.groups.add(approvers)
    carol.groups.add(approvers)
    for n in range(15):
        session, ext = _running_with_pending_extension(make_request, settings, n)
        errors = run_at_once(_one_of_each(
            lambda e=ext: extensions.extension_approve(extension_id=e.pk, approver=bob, origin=None),
            lambda s=session: services.session_end(session_id=s.pk, actor=carol, reason=EndReason.REVOKED, comment="stop"),
        ))
        # The approval may lose (the session ended first: ExtensionConflict); nothing else may fail.
        assert all(isinstance(e, extensions.ExtensionConflict) for e in errors), errors
        session.refresh_from_db()
        ext.refresh_from_db()
        assert session.status == SessionStatus.ENDED and session.end_reason == EndReason.REVOKED, n
        assert ext.status in (ExtensionStatus.APPROVED, ExtensionStatus.CANCELLED), (n, ext.status)
    verify_chain()
