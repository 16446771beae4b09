"""Who may do what: the rules every view, API endpoint and consumer asks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from approvals.models import Decision
from portal import permissions
from sessions.models import DebugSession


@pytest.fixture
def req(people: Any, make_request: Any) -> Any:
    return make_request(people.alice)


@pytest.fixture
def running(req: Any) -> DebugSession:
    now = timezone.now()
    req.status = "approved"
    req.save()
    return DebugSession.objects.create(
        request=req,
        status="running",
        created_at=now,
        namespace="default",
        pod="p",
        container_name="debugger-bbbbb",
        started_at=now,
        expires_at=now + timedelta(minutes=5),
    )


def test_roles(people: Any) -> None:
    assert [permissions.is_approver(getattr(people, n)) for n in ("alice", "bob", "dave", "admin")] == [False, True, False, False]
    assert [permissions.is_auditor(getattr(people, n)) for n in ("alice", "bob", "dave", "admin")] == [False, False, True, False]
    assert permissions.is_admin(people.admin) and not permissions.is_admin(people.bob)
    assert not permissions.is_approver(AnonymousUser()) and not permissions.is_admin(AnonymousUser())


def test_inactive_users_have_no_roles(people: Any) -> None:
    people.bob.is_active = False
    assert not permissions.is_approver(people.bob)


@pytest.mark.parametrize("who,expected", [("alice", True), ("bob", True), ("dave", True), ("admin", True), ("eve", False)])
def test_can_view_request(who: str, expected: bool, people: Any, req: Any) -> None:
    assert permissions.can_view_request(getattr(people, who), req) is expected
    assert not permissions.can_view_request(AnonymousUser(), req)


@pytest.mark.parametrize(
    "who,expected", [("alice", False), ("bob", True), ("carol", True), ("dave", False), ("admin", False), ("eve", False)]
)
def test_can_decide(who: str, expected: bool, people: Any, req: Any) -> None:
    assert permissions.can_decide(getattr(people, who), req) is expected


def test_can_decide_only_once_and_only_while_pending(people: Any, req: Any) -> None:
    Decision.objects.create(request=req, approver=people.bob, verdict="approve", created_at=timezone.now())
    assert not permissions.can_decide(people.bob, req) and permissions.can_decide(people.carol, req)
    req.expires_at = timezone.now() - timedelta(seconds=1)
    assert not permissions.can_decide(people.carol, req)
    req.expires_at = timezone.now() + timedelta(minutes=1)
    req.status = "denied"
    assert not permissions.can_decide(people.carol, req)


@pytest.mark.parametrize("who,expected", [("alice", True), ("bob", False), ("dave", False), ("admin", False), ("eve", False)])
def test_only_the_requester_uses_the_terminal(who: str, expected: bool, people: Any, running: DebugSession) -> None:
    assert permissions.can_use_terminal(getattr(people, who), running) is expected


def test_no_terminal_after_expiry_or_end(people: Any, running: DebugSession) -> None:
    running.expires_at = timezone.now() - timedelta(seconds=1)
    assert not permissions.can_use_terminal(people.alice, running)
    running.expires_at = timezone.now() + timedelta(minutes=1)
    running.status = "ended"
    assert not permissions.can_use_terminal(people.alice, running)


@pytest.mark.parametrize("who,expected", [("alice", True), ("bob", True), ("admin", True), ("dave", False), ("eve", False)])
def test_can_end_session(who: str, expected: bool, people: Any, running: DebugSession) -> None:
    assert permissions.can_end_session(getattr(people, who), running) is expected
