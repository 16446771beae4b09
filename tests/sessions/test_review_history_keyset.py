"""The session history's keyset pages: next/previous links, stable under new sessions, no COUNT(*)."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from sessions.models import DebugSession
from sessions.review.selectors import Cursor
from sessions.review.views import PAGE_SIZE
from tests.sessions.test_review_history import make_sessions


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _ids(resp: Any) -> list[str]:
    return [str(s.pk) for s in resp.context["page"].object_list]


def _link(resp: Any, rel: str) -> dict[str, str] | None:
    """The query of the page's `rel` link (next, prev), as the browser would follow it."""
    match = re.search(rf'<a href="\?([^"]*)" rel="{rel}">', resp.content.decode())
    if match is None:
        return None
    return dict(part.split("=", 1) for part in unescape(match[1]).split("&") if part)


def _newest_first() -> list[str]:
    return [str(pk) for pk in DebugSession.objects.order_by("-created_at", "-pk").values_list("pk", flat=True)]


def test_older_links_walk_every_session_once_in_order(db: Any, alice: Any, dave: Any) -> None:
    make_sessions(alice, 2 * PAGE_SIZE + 20)
    client = _client(dave)
    seen: list[str] = []
    resp = client.get("/sessions/history/")
    pages = 1
    assert _link(resp, "prev") is None
    while (query := _link(resp, "next")) is not None:
        seen += _ids(resp)
        resp = client.get("/sessions/history/", query)
        pages += 1
    seen += _ids(resp)
    assert pages == 3 and len(_ids(resp)) == 20
    assert seen == _newest_first()


def test_sessions_with_the_same_start_time_are_neither_skipped_nor_repeated(db: Any, alice: Any, dave: Any) -> None:
    make_sessions(alice, PAGE_SIZE + 30)
    DebugSession.objects.update(created_at=timezone.now())  # one timestamp for all: only the id orders them
    client = _client(dave)
    first = client.get("/sessions/history/")
    second = client.get("/sessions/history/", _link(first, "next"))
    assert _ids(first) + _ids(second) == _newest_first()
    back = client.get("/sessions/history/", _link(second, "prev"))
    assert _ids(back) == _ids(first)


def test_newer_links_come_back_to_the_same_pages(db: Any, alice: Any, dave: Any) -> None:
    make_sessions(alice, 3 * PAGE_SIZE + 5)
    client = _client(dave)
    pages = [client.get("/sessions/history/")]
    for _ in range(3):
        pages.append(client.get("/sessions/history/", _link(pages[-1], "next")))
    assert [i for page in pages for i in _ids(page)] == _newest_first()
    resp = pages[-1]
    for expected in reversed(pages[:-1]):
        resp = client.get("/sessions/history/", _link(resp, "prev"))
        assert _ids(resp) == _ids(expected)
    assert _link(resp, "prev") is None  # back at the top


def test_a_page_is_stable_while_new_sessions_arrive(db: Any, alice: Any, dave: Any) -> None:
    make_sessions(alice, 2 * PAGE_SIZE, start=100)  # started 100+ minutes ago
    client = _client(dave)
    first = client.get("/sessions/history/")
    second_then = _ids(client.get("/sessions/history/", _link(first, "next")))
    make_sessions(alice, 7)  # newer than all of them
    second_now = client.get("/sessions/history/", _link(first, "next"))
    assert _ids(second_now) == second_then  # an OFFSET page would have slid by 7
    back = client.get("/sessions/history/", _link(second_now, "prev"))
    assert _ids(back) == _ids(first)
    assert _link(back, "prev") is not None  # the 7 new ones are one more step up
    top = client.get("/sessions/history/", _link(back, "prev"))
    assert _ids(top) == _newest_first()[:PAGE_SIZE] and _link(top, "prev") is None


def test_no_page_counts_every_match_and_deep_pages_cost_the_same(db: Any, alice: Any, dave: Any) -> None:
    make_sessions(alice, 4 * PAGE_SIZE)
    client = _client(dave)
    client.get("/sessions/history/")  # the sign-in's activity stamp, not the page's cost
    sqls = []
    resp = None
    for _ in range(4):
        with CaptureQueriesContext(connection) as ctx:
            resp = client.get("/sessions/history/", _link(resp, "next") if resp is not None else {"command": "ls"})
        sqls.append([q["sql"] for q in ctx.captured_queries])
    assert len({len(s) for s in sqls}) == 1, [len(s) for s in sqls]
    assert not [q for s in sqls for q in s if "COUNT(" in q.upper()]
    assert not [q for s in sqls for q in s if " OFFSET " in q.upper()]


def test_the_filters_stay_on_the_links(db: Any, alice: Any, dave: Any) -> None:
    make_sessions(alice, PAGE_SIZE + 3, namespace="payments")
    make_sessions(alice, 10, start=500)
    client = _client(dave)
    first = client.get("/sessions/history/", {"namespace": "payments"})
    query = _link(first, "next")
    assert query is not None and query["namespace"] == "payments"
    second = client.get("/sessions/history/", query)
    assert len(_ids(second)) == 3 and _link(second, "next") is None


def test_a_short_list_says_how_many_and_has_no_pager(db: Any, alice: Any, dave: Any) -> None:
    make_sessions(alice, 3)
    html = _client(dave).get("/sessions/history/").content.decode()
    assert "3 sessions" in html and 'class="pager"' not in html


@pytest.mark.parametrize(
    "params",
    [
        {"after": "nonsense"},
        {"before": "12.zz"},
        {"after": f"9999999999999999999.{'a' * 32}"},  # past year 9999
        {"before": f"-9999999999999999999.{'a' * 32}"},
        {"page": "500"},  # an old-style link: the first page
    ],
)
def test_bad_cursors_give_the_first_page(db: Any, alice: Any, dave: Any, params: dict[str, str]) -> None:
    make_sessions(alice, PAGE_SIZE + 1)
    resp = _client(dave).get("/sessions/history/", params)
    assert resp.status_code == 200 and _ids(resp) == _newest_first()[:PAGE_SIZE]


def test_a_cursor_round_trips_exactly(db: Any, alice: Any) -> None:
    (session,) = make_sessions(alice, 1)
    session.refresh_from_db()
    assert Cursor.decode(Cursor.of(session).encode()) == Cursor(session.created_at, session.pk)


def test_a_requester_pages_only_through_their_own(db: Any, alice: Any, eve: Any) -> None:
    mine = make_sessions(alice, PAGE_SIZE + 2)
    make_sessions(eve, 30, start=1000)
    client = _client(alice)
    first = client.get("/sessions/history/")
    second = client.get("/sessions/history/", _link(first, "next"))
    assert set(_ids(first) + _ids(second)) == {str(s.pk) for s in mine}


def test_command_search_has_a_trigram_index_on_postgresql_and_sqlite_still_searches(db: Any, alice: Any, dave: Any) -> None:
    # The index comes from a migration that runs only on PostgreSQL (CI runs this file there too).
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'sessioncommand_text_trgm'")
            (indexdef,) = cursor.fetchone()
            assert "gin" in indexdef and "gin_trgm_ops" in indexdef and "upper" in indexdef.lower()
        else:
            names = connection.introspection.get_constraints(cursor, "debug_sessions_sessioncommand")
            assert "sessioncommand_text_trgm" not in names
    hits = make_sessions(alice, 3, command="sudo journalctl -u kubelet")
    make_sessions(alice, 5, start=10)
    assert set(_ids(_client(dave).get("/sessions/history/", {"command": "JOURNALCTL"}))) == {str(s.pk) for s in hits}
