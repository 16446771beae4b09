"""Who is watching a session live: a row per open watch (SessionWatch), shared by every process.

The watch consumer (sessions.review.consumers) opens a row when a watcher joins, refreshes it
while the socket is open and deletes it when it leaves. Readers count only rows seen in the
last WATCH_STALE_SECONDS, so a portal process that died without saying goodbye stops counting
after a while instead of showing its watchers forever.

When a person starts or stops watching (not a second tab of someone already watching), the
session's group hears `session.watchers` once the change commits: the requester's terminal
shows it as a `watcher_joined` / `watcher_left` STATUS line (docs/terminal-protocol.md).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from portal.events import publish_on_commit, session_group
from sessions.models import DebugSession, lock_session
from sessions.review.models import SessionWatch

# The consumer refreshes its row this often; a row unseen for WATCH_STALE_SECONDS is gone.
# Three missed refreshes: a busy process is not mistaken for a dead one.
WATCH_REFRESH_SECONDS = 20
WATCH_STALE_SECONDS = 3 * WATCH_REFRESH_SECONDS

JOINED = "watcher_joined"
LEFT = "watcher_left"


def _fresh_since() -> Any:
    return timezone.now() - timedelta(seconds=WATCH_STALE_SECONDS)


def _names(session_id: uuid.UUID | str) -> list[str]:
    rows = SessionWatch.objects.filter(session_id=session_id, seen_at__gte=_fresh_since())
    return sorted(set(rows.values_list("watcher__username", flat=True)))


def watcher_names(session_id: uuid.UUID | str) -> list[str]:
    """Who is watching the session now (usernames, sorted, each once)."""
    return _names(session_id)


def watchers_of(session_ids: Iterable[uuid.UUID | str]) -> dict[str, list[str]]:
    """Who is watching each of these sessions now: one query for a whole list page."""
    ids = [str(s) for s in session_ids]
    found: dict[str, set[str]] = defaultdict(set)
    if ids:
        rows = SessionWatch.objects.filter(session_id__in=ids, seen_at__gte=_fresh_since())
        for session_id, name in rows.values_list("session_id", "watcher__username"):
            found[str(session_id)].add(name)
    return {sid: sorted(found[sid]) for sid in ids}


def _publish(session: DebugSession, *, event: str, watcher: str, watchers: list[str]) -> None:
    message = (
        f"{watcher} is watching this session (read-only: they see the screen, they can't type)."
        if event == JOINED
        else f"{watcher} stopped watching this session."
    )
    publish_on_commit(
        session_group(session.pk),
        {"type": "session.watchers", "event": event, "message": message, "watcher": watcher, "watchers": watchers},
    )


def watch_opened(*, session_id: uuid.UUID | str, watcher: Any) -> uuid.UUID:
    """A watcher joined: their row, and `watcher_joined` if they weren't watching already.

    Under the session's row lock, so two joins or leaves of one session (two tabs, two
    processes) see each other's rows and exactly the first join and the last leave are told.
    """
    now = timezone.now()
    # Rows of processes that died: nobody else deletes them. Outside the lock below: rows of
    # other sessions are no business of this session's lock.
    SessionWatch.objects.filter(seen_at__lt=now - timedelta(seconds=WATCH_STALE_SECONDS)).delete()
    with transaction.atomic():
        session = lock_session(session_id)
        already = watcher.get_username() in _names(session.pk)
        watch = SessionWatch.objects.create(session=session, watcher=watcher, opened_at=now, seen_at=now)
        if not already:
            _publish(session, event=JOINED, watcher=watcher.get_username(), watchers=_names(session.pk))
    return watch.pk


def watch_seen(*, watch_id: uuid.UUID | str) -> bool:
    """The watch is still open (the consumer says so every WATCH_REFRESH_SECONDS).

    False if its row is gone (cleaned up as stale while this process stalled): the caller
    opens a new one, which tells the requester again.
    """
    return SessionWatch.objects.filter(pk=watch_id).update(seen_at=timezone.now()) > 0


def watch_closed(*, watch_id: uuid.UUID | str) -> None:
    """A watcher left: their row goes, and `watcher_left` if it was their last open view."""
    with transaction.atomic():
        session_id = SessionWatch.objects.filter(pk=watch_id).values_list("session_id", flat=True).first()
        if session_id is None:
            return
        session = lock_session(session_id)
        watch = SessionWatch.objects.select_related("watcher").filter(pk=watch_id).first()
        if watch is None:  # another leave of the same row won the lock
            return
        name = watch.watcher.get_username()
        watch.delete()
        remaining = _names(session.pk)
        if name not in remaining:
            _publish(session, event=LEFT, watcher=name, watchers=remaining)
