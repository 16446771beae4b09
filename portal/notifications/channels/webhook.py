"""The generic webhook: the event's JSON, signed (docs/notifications.md shows the receiver's check).

`X-Ephemera-Signature: sha256=<hex>` is the HMAC-SHA256, keyed with
EPHEMERA_NOTIFY_WEBHOOK_SECRET, of `<X-Ephemera-Timestamp>.<raw body>`: the timestamp is signed
too, so a receiver that refuses old timestamps refuses replays.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import TYPE_CHECKING, Any

from django.conf import settings

from portal.notifications.channels import post

if TYPE_CHECKING:
    from portal.notifications.models import Notification


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def body_of(row: Notification) -> dict[str, Any]:
    return {"id": str(row.delivery_id), **row.payload}


def send(row: Notification) -> None:
    body = json.dumps(body_of(row), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    timestamp = int(time.time())
    post(settings.EPHEMERA_NOTIFY_WEBHOOK_URL, body, {
        "X-Ephemera-Event": row.event,
        "X-Ephemera-Delivery": str(row.delivery_id),
        "X-Ephemera-Timestamp": str(timestamp),
        "X-Ephemera-Signature": sign(settings.EPHEMERA_NOTIFY_WEBHOOK_SECRET, timestamp, body),
    })
