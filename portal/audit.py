"""The audit trail: every state change writes one hash-chained AuditEvent in its own transaction.

`record_event` is the only writer. Each event's hash covers the previous event's hash, so
editing or deleting any row breaks `verify_chain`. Writers are serialized (PostgreSQL: a
transaction-scoped advisory lock; SQLite: IMMEDIATE transactions already serialize) so two
concurrent transactions can never both extend the same tail and fork the chain.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import connection, transaction
from django.utils import timezone

from portal.models import AuditEvent

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser
    from django.http import HttpRequest

    from approvals.models import DebugRequest
    from sessions.models import DebugSession

# Any constant works; it only has to be the same for every writer of the chain.
_PG_AUDIT_LOCK_KEY = 0x45504845  # "EPHE"
_UA_MAX = 300


class AuditChainError(Exception):
    """The chain was changed: a row's hash or its link to the previous row doesn't match."""


@dataclass(frozen=True)
class AuditOrigin:
    """Where an action came from: client IP and user agent."""

    ip: str | None
    user_agent: str

    @classmethod
    def from_request(cls, http_request: HttpRequest) -> AuditOrigin:
        # REMOTE_ADDR only: X-Forwarded-For is client-controlled unless a trusted proxy rewrites it.
        ip = http_request.META.get("REMOTE_ADDR") or None
        return cls(ip=ip, user_agent=str(http_request.META.get("HTTP_USER_AGENT", ""))[:_UA_MAX])

    @classmethod
    def from_scope(cls, scope: dict[str, Any]) -> AuditOrigin:
        client = scope.get("client") or (None, None)
        ua = ""
        for name, value in scope.get("headers") or []:
            if name.lower() == b"user-agent":
                ua = value.decode("latin-1")
                break
        return cls(ip=client[0] if client else None, user_agent=ua[:_UA_MAX])


SYSTEM_ORIGIN = AuditOrigin(ip=None, user_agent="ephemera")


def compute_hash(
    *,
    prev_hash: str,
    created_at_iso: str,
    actor_name: str,
    action: str,
    request_id: str | None,
    session_id: str | None,
    source_ip: str | None,
    user_agent: str,
    data: dict[str, Any],
) -> str:
    payload = [prev_hash, created_at_iso, actor_name, action, request_id, session_id, source_ip, user_agent, data]
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _hash_of(event: AuditEvent) -> str:
    return compute_hash(
        prev_hash=event.prev_hash,
        created_at_iso=event.created_at.isoformat(),
        actor_name=event.actor_name,
        action=event.action,
        request_id=str(event.request_id) if event.request_id else None,
        session_id=str(event.session_id) if event.session_id else None,
        source_ip=event.source_ip,
        user_agent=event.user_agent,
        data=event.data,
    )


def _lock_chain() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_PG_AUDIT_LOCK_KEY])
    elif connection.vendor != "sqlite":
        # Other backends: lock the tail row (good enough where a gap-free lock isn't available).
        list(AuditEvent.objects.select_for_update().order_by("-id")[:1])


def record_event(
    *,
    action: str,
    actor: AbstractBaseUser | None,
    request: DebugRequest | None = None,
    session: DebugSession | None = None,
    origin: AuditOrigin | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the chain. Must run inside the transaction of the change it records."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("record_event must be called inside the transaction of the change it records")
    origin = origin or SYSTEM_ORIGIN
    _lock_chain()
    prev = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first() or ""
    # Round-trip through JSON so what we hash is exactly what the JSONField stores and reads back.
    clean_data = json.loads(json.dumps(data or {}, default=str))
    event = AuditEvent(
        created_at=timezone.now(),
        actor=actor,
        actor_name=actor.get_username() if actor is not None else "",
        action=action,
        request=request,
        session=session,
        source_ip=origin.ip,
        user_agent=origin.user_agent[:_UA_MAX],
        data=clean_data,
        prev_hash=prev,
    )
    event.hash = _hash_of(event)
    event.save(force_insert=True)
    return event


def verify_chain() -> int:
    """Check every event's hash and link; return how many were checked or raise AuditChainError."""
    prev = ""
    count = 0
    for event in AuditEvent.objects.order_by("id").iterator():
        if event.prev_hash != prev:
            raise AuditChainError(f"audit event {event.pk} does not link to the event before it")
        if _hash_of(event) != event.hash:
            raise AuditChainError(f"audit event {event.pk} was changed after it was written")
        prev = event.hash
        count += 1
    return count
