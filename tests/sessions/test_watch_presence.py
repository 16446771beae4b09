"""Who is watching (sessions.review.presence): a row per open watch, the first join and the
last leave of each person told to the session's group, stale rows of dead processes ignored."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from sessions.models import DebugSession
from sessions.review import presence
from sessions.review.models import SessionWatch


@pytest.fixture
def told(monkeypatch: Any) -> list[tuple[str, dict[str, Any]]]:
    """What presence publishes (group, payload), as it would reach the channel layer on commit."""
    sent: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(presence, "publish_on_commit", lambda group, payload: sent.append((group, payload)))
    return sent


@pytest.fixture
def session(alice: Any, make_request: Any) -> DebugSession:
    now = timezone.now()
    req = make_request(alice, status="approved")
    return DebugSession.objects.create(
        request=req,
        created_at=now,
        namespace="default",
        pod=req.pod,
        container_name="debugger-x",
        status="running",
        expires_at=now + timedelta(minutes=10),
    )


def _events(told: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, str, list[str]]]:
    return [(p["event"], p["watcher"], p["watchers"]) for _, p in told]


def test_the_first_join_and_the_last_leave_of_each_person_are_told(
    session: DebugSession, bob: Any, dave: Any, told: list[tuple[str, dict[str, Any]]]
) -> None:
    bob_1 = presence.watch_opened(session_id=session.pk, watcher=bob)
    bob_2 = presence.watch_opened(session_id=session.pk, watcher=bob)  # a second tab: nothing new
    dave_1 = presence.watch_opened(session_id=session.pk, watcher=dave)
    assert presence.watcher_names(session.pk) == ["bob", "dave"]
    presence.watch_closed(watch_id=bob_1)  # bob still has a tab open: nothing new
    presence.watch_closed(watch_id=dave_1)
    presence.watch_closed(watch_id=bob_2)
    presence.watch_closed(watch_id=bob_2)  # twice (disconnect after finish): once only
    assert _events(told) == [
        ("watcher_joined", "bob", ["bob"]),
        ("watcher_joined", "dave", ["bob", "dave"]),
        ("watcher_left", "dave", ["bob"]),
        ("watcher_left", "bob", []),
    ]
    assert {group for group, _ in told} == {f"session.{session.pk}"}
    assert all(p["type"] == "session.watchers" and p["message"] for _, p in told)
    assert "bob is watching" in told[0][1]["message"] and "dave stopped watching" in told[2][1]["message"]
    assert not SessionWatch.objects.exists()


def test_a_dead_process_rows_stop_counting_and_are_cleaned_up(
    session: DebugSession, bob: Any, dave: Any, told: list[tuple[str, dict[str, Any]]]
) -> None:
    watch = presence.watch_opened(session_id=session.pk, watcher=bob)
    stale = timezone.now() - timedelta(seconds=presence.WATCH_STALE_SECONDS + 1)
    SessionWatch.objects.filter(pk=watch).update(seen_at=stale)  # its process died: no more refreshes
    assert presence.watcher_names(session.pk) == []
    assert presence.watchers_of([session.pk]) == {str(session.pk): []}
    # bob opens it again elsewhere: he is told as joining anew, and the dead row is gone.
    told.clear()
    presence.watch_opened(session_id=session.pk, watcher=bob)
    assert _events(told) == [("watcher_joined", "bob", ["bob"])]
    assert not SessionWatch.objects.filter(pk=watch).exists()


def test_a_refresh_keeps_a_watch_counting_and_says_when_its_row_is_gone(session: DebugSession, bob: Any) -> None:
    watch = presence.watch_opened(session_id=session.pk, watcher=bob)
    SessionWatch.objects.filter(pk=watch).update(seen_at=timezone.now() - timedelta(seconds=presence.WATCH_STALE_SECONDS - 5))
    assert presence.watch_seen(watch_id=watch) is True
    assert presence.watcher_names(session.pk) == ["bob"]
    SessionWatch.objects.filter(pk=watch).delete()
    assert presence.watch_seen(watch_id=watch) is False


def test_the_refresh_comes_well_before_a_row_counts_as_stale() -> None:
    assert presence.WATCH_STALE_SECONDS >= 2 * presence.WATCH_REFRESH_SECONDS
