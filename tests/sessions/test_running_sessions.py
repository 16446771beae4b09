"""The running-sessions list (/sessions/running/ and GET /api/v1/sessions): who sees which
sessions, what each may do from it, the filters, who is watching, and constant queries.

No cluster: sessions are rows written directly, as the list only reads them.
"""

from __future__ import annotations

import re
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from sessions.models import DebugSession, SessionExtension
from sessions.review.models import SessionWatch
from tests.conftest import _make_user

ONCALL = "payments-oncall"
ROLES = ["alice", "bob", "pete", "carol", "dave", "admin", "eve"]


@pytest.fixture
def pete(db: Any) -> User:
    """An approver only for the payments rule's group (not the default approver group)."""
    return _make_user("pete", group=ONCALL)


@pytest.fixture
def scene(people: SimpleNamespace, pete: User, make_request: Any) -> SimpleNamespace:
    """Running sessions of alice (default rule, and the payments rule), eve and carol (a node),
    and an ended one of alice's."""
    now = timezone.now()

    def session(requester: User, *, status: str = "running", minutes: int = 20, **request: Any) -> DebugSession:
        req = make_request(requester, status="approved", **request)
        return DebugSession.objects.create(
            request=req,
            created_at=now - timedelta(minutes=minutes),
            namespace=req.namespace or "default",
            pod=req.pod or "node-debugger-x",
            container_name="debugger-abc12",
            status=status,
            started_at=now - timedelta(minutes=minutes),
            expires_at=now + timedelta(minutes=10) if status == "running" else now - timedelta(minutes=1),
            ended_at=None if status == "running" else now,
        )

    return SimpleNamespace(
        default=session(people.alice, minutes=5, reason="alice default"),
        payments=session(
            people.alice,
            minutes=6,
            namespace="payments",
            pod="billing-0",
            reason="alice payments",
            policy={"rule": "payments", "approver_groups": [ONCALL]},
        ),
        eve=session(people.eve, minutes=7, reason="eve default"),
        node=session(
            people.carol, minutes=8, kind="node", namespace="", pod="", container="", node="debian-11", reason="carol node"
        ),
        ended=session(people.alice, status="ended", minutes=30, reason="alice ended"),
        people=SimpleNamespace(**vars(people), pete=pete),
    )


# Who lists which running sessions (the default: status=running).
EXPECTED = {
    "alice": {"default", "payments"},  # her own
    "eve": {"eve"},  # her own
    "bob": {"default", "eve", "node"},  # the default rule's approvers; not the payments rule's
    "carol": {"default", "eve", "node"},  # the same, her own node session included
    "pete": {"payments"},  # only the payments rule's group
    "dave": {"default", "payments", "eve", "node"},  # auditor: all
    "admin": {"default", "payments", "eve", "node"},  # admin: all
}


def _names(scene: SimpleNamespace, ids: set[str]) -> set[str]:
    by_id = {str(getattr(scene, n).pk): n for n in ("default", "payments", "eve", "node", "ended")}
    return {by_id[i] for i in ids}


def _api(user: User | None, api_client_for: Any, **params: str) -> Any:
    return api_client_for(user).get("/api/v1/sessions", params)


def _page(user: User, path: str = "/sessions/running/", **params: str) -> Any:
    client = Client()
    client.force_login(user)
    return client.get(path, params)


def _page_ids(resp: Any) -> set[str]:
    return set(re.findall(r'data-session-id="([0-9a-f-]{36})"', resp.content.decode()))


@pytest.mark.parametrize("who", ROLES)
def test_the_api_lists_exactly_the_sessions_in_scope(who: str, scene: SimpleNamespace, api_client_for: Any) -> None:
    resp = _api(getattr(scene.people, who), api_client_for)
    assert resp.status_code == 200, resp.content
    assert _names(scene, {row["id"] for row in resp.json()}) == EXPECTED[who]


@pytest.mark.parametrize("who", ROLES)
@pytest.mark.parametrize("path", ["/sessions/running/", "/sessions/running/list"])
def test_the_page_and_its_live_list_show_exactly_the_sessions_in_scope(who: str, path: str, scene: SimpleNamespace) -> None:
    resp = _page(getattr(scene.people, who), path)
    assert resp.status_code == 200
    assert _names(scene, _page_ids(resp)) == EXPECTED[who]


def test_anonymous_gets_401_from_the_api_and_the_login_page_from_the_pages(scene: SimpleNamespace, api_client_for: Any) -> None:
    resp = _api(None, api_client_for)
    assert resp.status_code == 401
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Bearer eph_not-a-real-token")
    assert bad.get("/api/v1/sessions").status_code == 401
    for path in ("/sessions/running/", "/sessions/running/list"):
        resp = Client().get(path)
        assert resp.status_code == 302 and resp["Location"].startswith("/login/"), path
        assert str(scene.default.pk) not in resp.content.decode()


def test_a_deactivated_account_lists_nothing(scene: SimpleNamespace, api_client_for: Any) -> None:
    client = api_client_for(scene.people.admin)
    User.objects.filter(pk=scene.people.admin.pk).update(is_active=False)
    assert client.get("/api/v1/sessions").status_code == 401


def test_an_approver_sees_a_session_of_a_group_the_policy_no_longer_names(scene: SimpleNamespace, api_client_for: Any) -> None:
    """The request's rule, as it was when asked, decides (as for approving and revoking)."""
    legacy = _make_user("lee", group="old-oncall")
    req = scene.eve.request
    req.policy = {"rule": "gone", "approver_groups": ["old-oncall"]}
    req.save(update_fields=["policy"])
    assert _names(scene, {row["id"] for row in _api(legacy, api_client_for).json()}) == {"eve"}
    assert "eve" not in _names(scene, {row["id"] for row in _api(scene.people.bob, api_client_for).json()})


def _row(user: User, session: DebugSession, api_client_for: Any) -> dict[str, Any]:
    rows = {row["id"]: row for row in _api(user, api_client_for).json()}
    return rows[str(session.pk)]


def test_each_row_offers_only_what_the_viewer_may_do(scene: SimpleNamespace, api_client_for: Any) -> None:
    p, s = scene.people, scene.default
    SessionExtension.objects.create(session=s, requester=p.alice, minutes=10, reason="need more", created_at=timezone.now())
    alice = _row(p.alice, s, api_client_for)
    assert (alice["can_watch"], alice["can_end"], alice["can_decide_extension"], alice["can_ask_extension"]) == (
        False,
        True,
        False,
        False,  # her own: end it; an extension is already pending
    )
    bob = _row(p.bob, s, api_client_for)
    assert (bob["can_watch"], bob["can_end"], bob["can_decide_extension"], bob["can_ask_extension"]) == (True, True, True, False)
    assert bob["watch_url"] == f"/sessions/{s.pk}/watch" and bob["page_url"] == f"/sessions/{s.pk}/"
    assert bob["pending_extension"]["minutes"] == 10 and bob["pending_extension"]["reason"] == "need more"
    dave = _row(p.dave, s, api_client_for)  # auditor: watches, never ends or decides
    assert (dave["can_watch"], dave["can_end"], dave["can_decide_extension"]) == (True, False, False)
    admin = _row(p.admin, s, api_client_for)  # admin: watches and ends; deciding is the rule's approvers'
    assert (admin["can_watch"], admin["can_end"], admin["can_decide_extension"]) == (True, True, False)
    assert admin["watch_url"] is not None
    carol = _row(p.carol, scene.node, api_client_for)  # her own node session: no watching herself
    assert (carol["can_watch"], carol["can_end"], carol["can_ask_extension"], carol["watch_url"]) == (False, True, True, None)


def test_a_row_has_the_facts_the_page_needs(scene: SimpleNamespace, api_client_for: Any) -> None:
    row = _row(scene.people.dave, scene.node, api_client_for)
    assert row["kind"] == "node" and row["target"] == "node/debian-11" and row["node"] == "debian-11"
    assert row["requester"] == "carol" and row["profile"] == "general" and row["image"] == "busybox"
    assert row["status"] == "running" and row["reason"] == "carol node"
    assert 540 <= row["seconds_left"] <= 600 and row["expires_at"]
    assert row["request_id"] == str(scene.node.request_id) and row["watchers"] == []


def test_the_page_renders_the_actions_each_viewer_may_take(scene: SimpleNamespace) -> None:
    p, s = scene.people, scene.default
    ext = SessionExtension.objects.create(session=s, requester=p.alice, minutes=10, reason="need more", created_at=timezone.now())
    bob = _page(p.bob).content.decode()
    assert f'href="/sessions/{s.pk}/watch"' in bob
    assert f'action="/sessions/{s.pk}/end"' in bob and f'id="revoke-reason-{s.pk}"' in bob
    assert f'data-api-url="/api/v1/sessions/{s.pk}/end"' in bob
    assert f'action="/sessions/extensions/{ext.pk}/decide"' in bob and "Extend +10 min" in bob
    dave = _page(p.dave).content.decode()
    assert f'href="/sessions/{s.pk}/watch"' in dave
    assert f'action="/sessions/{s.pk}/end"' not in dave and "/decide" not in dave
    alice = _page(p.alice).content.decode()
    assert f'href="/sessions/{s.pk}/watch"' not in alice and "/decide" not in alice
    assert f'action="/sessions/{s.pk}/end"' in alice and f'id="revoke-reason-{s.pk}"' not in alice  # End, no reason
    # The payments session has no pending extension: alice may ask for one there.
    assert f'action="/sessions/{scene.payments.pk}/extend"' in alice and f'action="/sessions/{s.pk}/extend"' not in alice


def test_the_page_is_strict_csp_clean(scene: SimpleNamespace) -> None:
    html = _page(scene.people.bob).content.decode()
    assert " style=" not in html and "onclick" not in html.lower() and "<style" not in html
    assert re.findall(r"<script(?![^>]*\bsrc=)", html) == []  # no inline script


@pytest.mark.parametrize(
    "params,expected",
    [
        ({"status": "ended"}, {"ended"}),
        ({"namespace": "payments"}, {"payments"}),
        ({"requester": "eve"}, {"eve"}),
        ({"kind": "node"}, {"node"}),
        ({"kind": "pod", "requester": "alice"}, {"default", "payments"}),
        ({"status": "running", "namespace": "nowhere"}, set()),
    ],
)
def test_every_filter_narrows_the_list(
    scene: SimpleNamespace, api_client_for: Any, params: dict[str, str], expected: set[str]
) -> None:
    resp = _api(scene.people.admin, api_client_for, **params)
    assert resp.status_code == 200
    assert _names(scene, {row["id"] for row in resp.json()}) == expected
    assert _names(scene, _page_ids(_page(scene.people.admin, **params))) == expected


def test_filters_never_widen_the_scope(scene: SimpleNamespace, api_client_for: Any) -> None:
    assert _api(scene.people.eve, api_client_for, requester="alice").json() == []
    assert _names(scene, {r["id"] for r in _api(scene.people.bob, api_client_for, namespace="payments").json()}) == set()
    assert _names(scene, {r["id"] for r in _api(scene.people.eve, api_client_for, status="ended").json()}) == set()


@pytest.mark.parametrize(
    "params,field",
    [
        ({"status": "sleeping"}, "status"),
        ({"kind": "vm"}, "kind"),
        ({"namespace": "a\x00b"}, "namespace"),
        ({"requester": "x" * 300}, "requester"),
    ],
)
def test_a_bad_filter_is_a_400_naming_it(scene: SimpleNamespace, api_client_for: Any, params: dict[str, str], field: str) -> None:
    resp = _api(scene.people.admin, api_client_for, **params)
    assert resp.status_code == 400 and list(resp.json()) == [field], resp.content
    page = _page(scene.people.admin, **params)
    assert page.status_code == 400 and _page_ids(page) == set()
    assert f"The {field} filter" in page.content.decode()


def test_watchers_are_listed_and_stale_watches_ignored(scene: SimpleNamespace, api_client_for: Any) -> None:
    p, now = scene.people, timezone.now()
    SessionWatch.objects.create(session=scene.default, watcher=p.bob, opened_at=now, seen_at=now)
    SessionWatch.objects.create(session=scene.default, watcher=p.bob, opened_at=now, seen_at=now)  # a second tab
    SessionWatch.objects.create(session=scene.default, watcher=p.dave, opened_at=now, seen_at=now)
    # A row its process never removed (it died): ignored once it is this old.
    SessionWatch.objects.create(
        session=scene.eve, watcher=p.dave, opened_at=now - timedelta(hours=1), seen_at=now - timedelta(minutes=5)
    )
    rows = {r["id"]: r for r in _api(p.admin, api_client_for).json()}
    assert rows[str(scene.default.pk)]["watchers"] == ["bob", "dave"]
    assert rows[str(scene.eve.pk)]["watchers"] == []
    html = _page(p.alice).content.decode()
    assert 'data-watchers="bob,dave"' in html and "bob, dave" in html


def test_the_list_version_changes_only_with_what_it_shows(scene: SimpleNamespace) -> None:
    def version() -> str:
        found = re.search(r'data-version="([0-9a-f]+)"', _page(scene.people.bob, "/sessions/running/list").content.decode())
        assert found
        return found[1]

    first = version()
    assert version() == first  # nothing changed (the CSRF tokens in its forms do, every time)
    now = timezone.now()
    SessionWatch.objects.create(session=scene.default, watcher=scene.people.dave, opened_at=now, seen_at=now)
    assert version() != first


def _grow(requester: User, n: int, make_request: Any) -> None:
    now = timezone.now()
    for i in range(n):
        req = make_request(requester, status="approved", pod=f"web-{i}")
        session = DebugSession.objects.create(
            request=req,
            created_at=now,
            namespace="default",
            pod=req.pod,
            container_name="debugger-x",
            status="running",
            expires_at=now + timedelta(minutes=5),
        )
        SessionWatch.objects.create(session=session, watcher=requester, opened_at=now, seen_at=now)
        SessionExtension.objects.create(session=session, requester=requester, minutes=5, reason="r", created_at=now)


@pytest.mark.parametrize("who", ["bob", "admin", "alice"])
def test_the_query_count_stays_constant_as_sessions_grow(who: str, scene: SimpleNamespace, make_request: Any) -> None:
    user = getattr(scene.people, who)
    client = Client()
    client.force_login(user)
    counts = []
    for more in (0, 15):
        _grow(scene.people.alice, more, make_request)
        with CaptureQueriesContext(connection) as ctx:
            resp = client.get("/sessions/running/list")
        assert resp.status_code == 200
        counts.append(len(ctx.captured_queries))
    assert len(_page_ids(resp)) >= 15
    assert counts[0] == counts[1], counts


def test_a_new_group_member_lists_as_an_approver_at_once(scene: SimpleNamespace, api_client_for: Any) -> None:
    client = api_client_for(scene.people.eve)
    assert _names(scene, {r["id"] for r in client.get("/api/v1/sessions").json()}) == {"eve"}
    scene.people.eve.groups.add(Group.objects.get(name=ONCALL))
    assert _names(scene, {r["id"] for r in client.get("/api/v1/sessions").json()}) == {"eve", "payments"}
