"""Identifiers and timestamps shaped like the ones containerd and the kubelet report."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime


def new_container_id() -> str:
    """A containerd-style 64-hex container (or exec) id."""
    return secrets.token_hex(32)


def image_digest(reference: str) -> str:
    # Deterministic per image name so the same image always shows the same imageID, as a real node cache would.
    return "sha256:" + hashlib.sha256(reference.encode()).hexdigest()


def now_rfc3339() -> str:
    """Kubernetes timestamps are second-precision UTC with a Z suffix."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def go_duration(seconds: float) -> str:
    """Format like Go's time.Duration.String() (10s, 1m20s, 5m0s, 200ms), as the kubelet's back-off messages do."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    whole = int(round(seconds))
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"
