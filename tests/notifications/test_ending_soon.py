"""session.ending_soon: 5 minutes before the limit, once per limit, to the requester and the open terminal."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from portal.models import AuditEvent
from portal.notifications.constants import Channel, Event
from portal.notifications.ending_soon import notify_ending_soon
from portal.notifications.models import Notification
from sessions.models import DebugSession
from tests.sessions.conftest import open_term, term_kube, term_session, term_users  # noqa: F401


def running(make_request: Any, user: Any, *, ends_in: timedelta, clock_started: bool = True) -> DebugSession:
    now = timezone.now()
    return DebugSession.objects.create(
        request=make_request(user, status="approved"), status="running", created_at=now, namespace="default",
        pod="distroless-nginx-x", container_name="debugger-abc", started_at=now,
        clock_started_at=now if clock_started else None, expires_at=now + ends_in,
    )


def test_the_requester_is_told_once_five_minutes_before_the_limit(people: Any, make_request: Any, channels_on: Any) -> None:
    session = running(make_request, people.alice, ends_in=timedelta(minutes=4, seconds=30))
    later = running(make_request, people.alice, ends_in=timedelta(minutes=40))
    unopened = running(make_request, people.alice, ends_in=timedelta(minutes=3), clock_started=False)
    assert notify_ending_soon() == 1
    assert notify_ending_soon() == 0  # once
    (mail,) = Notification.objects.filter(event=Event.SESSION_ENDING_SOON, channel=Channel.EMAIL)
    assert mail.recipient == "alice@example.com" and mail.session == session
    assert mail.payload["url"] == f"https://ephemera.example.com/sessions/{session.pk}/"
    assert mail.payload["detail"]["minutes_left"] in (4, 5)
    assert AuditEvent.objects.filter(action="session.ending_soon", session=session).count() == 1
    assert not AuditEvent.objects.filter(action="session.ending_soon", session__in=[later, unopened]).exists()

    # An approved extension moves the limit: the new limit gets its own notice, once.
    DebugSession.objects.filter(pk=session.pk).update(expires_at=session.expires_at + timedelta(minutes=15))
    assert notify_ending_soon() == 0
    assert notify_ending_soon(now=timezone.now() + timedelta(minutes=15)) == 1
    assert notify_ending_soon(now=timezone.now() + timedelta(minutes=15)) == 0
    assert AuditEvent.objects.filter(action="session.ending_soon", session=session).count() == 2


def test_it_is_told_even_with_no_channel_set(people: Any, make_request: Any) -> None:
    session = running(make_request, people.alice, ends_in=timedelta(minutes=2))
    assert notify_ending_soon() == 1  # the terminal still hears it; no outbox row to write
    assert AuditEvent.objects.filter(action="session.ending_soon", session=session).exists()
    assert not Notification.objects.exists()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_the_open_terminal_and_a_watcher_show_it_and_stay_open(term_session: Any, term_users: Any) -> None:  # noqa: F811
    term, _ = await open_term(term_session, user=term_users.alice)
    watcher = None
    try:
        await term.until(lambda: any(s["event"] == "connected" for s in term.statuses))
        watcher, _ = await open_term(term_session, user=term_users.bob, path=f"/ws/sessions/{term_session.pk}/watch")
        await watcher.until(lambda: any(s["event"] == "watching" for s in watcher.statuses))
        soon = timezone.now() + timedelta(minutes=4)
        await database_sync_to_async(DebugSession.objects.filter(pk=term_session.pk).update)(expires_at=soon)
        assert await database_sync_to_async(notify_ending_soon)() == 1
        for client in (term, watcher):
            await client.until(lambda c=client: any(s["event"] == "ending_soon" for s in c.statuses))
            status = next(s for s in client.statuses if s["event"] == "ending_soon")
            assert status["expires_at"] == soon.isoformat() and "ends in 4 minutes" in status["message"]
        out = await term.run("echo still-$((2+2))", "s")
        assert b"still-4" in out and term.close_code is None and watcher.close_code is None
    finally:
        await term.close()
        if watcher is not None:
            await watcher.close()
