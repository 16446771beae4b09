"""Live updates: channel-layer broadcasts sent only after the change they announce commits."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

APPROVALS_GROUP = "approvals"


def session_group(session_id: uuid.UUID | str) -> str:
    return f"session.{session_id}"


def _send(group: str, payload: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, payload)
    except Exception:
        # A lost live update must never undo or fail a committed change; clients re-read state.
        logger.exception("could not publish %s to %s", payload.get("type"), group)


def publish_on_commit(group: str, payload: dict[str, Any]) -> None:
    """Send `payload` to `group` once the current transaction commits (now, if there is none)."""
    transaction.on_commit(lambda: _send(group, payload))
