"""A small world of rows for the bad-input tests: something for every endpoint to act on.

Rows are written directly (no cluster): a pending request for alice, a running session of
hers with a pending extension, another running session with room to extend, and an ended
session for dave to review. `snapshot` reads every row an input could change, so a test can
assert that a refused input wrote nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone

from approvals.models import DebugRequest, Decision
from portal.models import AuditEvent
from sessions.models import DebugSession, SessionExtension
from sessions.review.models import SessionReview


@dataclass
class World:
    pending: DebugRequest
    running: DebugSession  # alice's, no extension yet: /extend lands here
    extended: DebugSession  # alice's, with `extension` pending
    extension: SessionExtension
    ended: DebugSession  # alice's, over: dave may review it


def _session(req: DebugRequest, *, status: str) -> DebugSession:
    now = timezone.now()
    return DebugSession.objects.create(
        request=req,
        created_at=now,
        namespace=req.namespace,
        pod=req.pod,
        container_name="debugger-x",
        status=status,
        started_at=now,
        expires_at=now + timedelta(minutes=30),
        ended_at=now if status == "ended" else None,
    )


def build_world(alice: User, make_request: Callable[..., DebugRequest]) -> World:
    pending = make_request(alice)
    running = _session(make_request(alice, status="approved"), status="running")
    extended = _session(make_request(alice, status="approved"), status="running")
    extension = SessionExtension.objects.create(
        session=extended, requester=alice, minutes=10, reason="still digging", created_at=timezone.now()
    )
    ended = _session(make_request(alice, status="approved"), status="ended")
    return World(pending=pending, running=running, extended=extended, extension=extension, ended=ended)


def snapshot() -> dict[str, list[dict[str, Any]]]:
    """Every row a request, decision, session, extension, review or audit write would touch."""
    models: list[Any] = [DebugRequest, Decision, DebugSession, SessionExtension, SessionReview, AuditEvent]
    return {m.__name__: [dict(row) for row in m.objects.order_by("pk").values()] for m in models}
