"""The audit trail as JSON lines: one event per line, oldest first, with both hashes.

Each line carries `prev_hash` and `hash`, so an export can be checked on its own (see
`verify_lines`) and archived outside the portal; an archived copy's last hash also pins the
chain's head, which catches a truncated tail that the chain alone cannot.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from portal.audit import AuditChainError, compute_hash
from portal.models import AuditEvent

BATCH = 2000


def event_dict(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.pk,
        "created_at": event.created_at.isoformat(),
        "actor": event.actor_name,
        "action": event.action,
        "request_id": str(event.request_id) if event.request_id else None,
        "session_id": str(event.session_id) if event.session_id else None,
        "source_ip": event.source_ip,
        "user_agent": event.user_agent,
        "data": event.data,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def iter_lines(*, since: datetime | None = None) -> Iterator[str]:
    """Every event (from `since`), as JSON lines, read in batches by id (bounded memory)."""
    qs = AuditEvent.objects.order_by("id")
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    last = 0
    while True:
        batch = list(qs.filter(id__gt=last)[:BATCH])
        if not batch:
            return
        for event in batch:
            yield json.dumps(event_dict(event), ensure_ascii=False, sort_keys=True) + "\n"
        last = batch[-1].pk


def verify_lines(lines: Iterable[str]) -> int:
    """Check an export (a whole one, from the first event): hashes and links. Return the count."""
    prev = ""
    count = 0
    for line in lines:
        e = json.loads(line)
        if e["prev_hash"] != prev:
            raise AuditChainError(f"exported event {e['id']} does not link to the event before it")
        digest = compute_hash(
            prev_hash=e["prev_hash"],
            created_at_iso=e["created_at"],
            actor_name=e["actor"],
            action=e["action"],
            request_id=e["request_id"],
            session_id=e["session_id"],
            source_ip=e["source_ip"],
            user_agent=e["user_agent"],
            data=e["data"],
        )
        if digest != e["hash"]:
            raise AuditChainError(f"exported event {e['id']} was changed")
        prev = e["hash"]
        count += 1
    return count
