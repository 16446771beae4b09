"""Decided once: two approvers (or two clicks) at the same moment, with real transactions.

Runs on SQLite by default and on PostgreSQL when DATABASE_URL points there (.ci/run).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection

from approvals import services
from approvals.choices import RequestStatus
from approvals.models import Decision
from portal.audit import AuditOrigin, record_event, verify_chain
from portal.models import AuditEvent
from sessions.models import DebugSession

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def started(monkeypatch: Any) -> list[str]:
    """Provisioning sessions is not what these tests are about: record instead of starting."""
    calls: list[str] = []
    monkeypatch.setattr("sessions.provisioner.start", lambda session_id: calls.append(str(session_id)))
    return calls


def _approver(name: str, settings: Any) -> User:
    user = User.objects.create_user(username=name)
    user.groups.add(Group.objects.get_or_create(name=settings.EPHEMERA_APPROVER_GROUP)[0])
    return user


def _race(callables: list[Any]) -> list[Any]:
    barrier = threading.Barrier(len(callables))
    results: list[Any] = [None] * len(callables)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = callables[i]()
        except Exception as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(callables))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


@pytest.mark.parametrize("attempt", range(3))
def test_two_approvers_at_once_approve_exactly_once(attempt: int, make_request: Any, settings: Any, started: list[str]) -> None:
    alice = User.objects.create_user(username="alice")
    bob, carol = _approver("bob", settings), _approver("carol", settings)
    req = make_request(alice)
    origin = AuditOrigin(ip="127.0.0.1", user_agent="race")
    results = _race(
        [
            lambda: services.request_approve(request_id=req.pk, approver=bob, origin=origin),
            lambda: services.request_approve(request_id=req.pk, approver=carol, origin=origin),
        ]
    )
    winners = [r for r in results if not isinstance(r, Exception)]
    losers = [r for r in results if isinstance(r, Exception)]
    assert len(winners) == 1, results
    assert len(losers) == 1 and isinstance(losers[0], services.RequestConflict), results
    req.refresh_from_db()
    assert req.status == RequestStatus.APPROVED
    assert Decision.objects.filter(request=req).count() == 1
    assert DebugSession.objects.filter(request=req).count() == 1
    assert AuditEvent.objects.filter(request=req, action="request.approved").count() == 1
    assert len(started) == 1
    verify_chain()


def test_approve_and_deny_at_once_decide_exactly_once(make_request: Any, settings: Any, started: list[str]) -> None:
    alice = User.objects.create_user(username="alice")
    bob, carol = _approver("bob", settings), _approver("carol", settings)
    req = make_request(alice)
    results = _race(
        [
            lambda: services.request_approve(request_id=req.pk, approver=bob, origin=None),
            lambda: services.request_deny(request_id=req.pk, approver=carol, comment="no", origin=None),
        ]
    )
    assert sum(isinstance(r, services.RequestConflict) for r in results) == 1, results
    req.refresh_from_db()
    assert req.status in (RequestStatus.APPROVED, RequestStatus.DENIED)
    assert DebugSession.objects.filter(request=req).count() == (1 if req.status == RequestStatus.APPROVED else 0)


def test_concurrent_audit_writers_never_fork_the_chain() -> None:
    def write(n: int) -> None:
        from django.db import transaction

        for i in range(10):
            with transaction.atomic():
                record_event(action="test.concurrent", actor=None, data={"writer": n, "i": i})

    results = _race([lambda n=n: write(n) for n in range(4)])
    assert not [r for r in results if isinstance(r, Exception)], results
    assert AuditEvent.objects.count() == 40
    assert verify_chain() == 40
    prevs = list(AuditEvent.objects.values_list("prev_hash", flat=True))
    assert len(prevs) == len(set(prevs)), "two events link to the same predecessor: the chain forked"
