"""Revocations reach open connections: `access_changed(user_id)` makes every open websocket of
that user re-check its access at once, instead of living on what the handshake allowed.

Each websocket consumer joins `user_group(user.pk)` on connect (portal.ws_auth.LiveAccessMixin).
Callers: every role change (portal.role_audit: groups, superuser/staff flags, (de)activation,
a password change, API token revocation) and every logout (below). The message goes out on
commit, so the re-check reads the new state, and it carries nothing but what to re-check.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver
from django.http import HttpRequest

from portal.events import publish_on_commit

ACCESS_CHANGED = "access.changed"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def access_changed(user_id: int | None, *, ended_session_key: str | None = None) -> None:
    """Tell the user's open websockets to re-check their access, once the transaction commits.

    `ended_session_key`: a login session being signed out right now. Logout announces itself
    before it deletes the session, so the sockets of that login close on its (hashed) name
    rather than race the delete.
    """
    if user_id is None:
        return
    payload: dict[str, Any] = {"type": ACCESS_CHANGED}
    if ended_session_key:
        from portal.ws_auth import session_key_hash

        payload["ended_session"] = session_key_hash(ended_session_key)
    publish_on_commit(user_group(user_id), payload)


@receiver(user_logged_out, dispatch_uid="ephemera-access-logged-out")
def _logged_out(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    session = getattr(request, "session", None)
    access_changed(getattr(user, "pk", None), ended_session_key=getattr(session, "session_key", None))
