"""Hostile inputs on every way in are a 400 with an error naming what was wrong, never a 500.

The sixteen cases of the hardening issue first (each crashed the running portal: an
OverflowError, a RecursionError, or PostgreSQL refusing NUL / the UTF-8 encoder refusing a
lone surrogate), then the neighbours of each. Every case also checks that nothing was written.
The suite runs these on SQLite and, in CI, on PostgreSQL (DATABASE_URL).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from rest_framework.test import APIClient

from portal.validators import FORBIDDEN_CHARACTERS_MESSAGE
from tests.conftest import TARGET_CONTAINER
from tests.portal.api_world import World, build_world, snapshot

NUL = "\x00"
SURROGATE = "\ud800"
DEEP = 10_000


@dataclass(frozen=True)
class Case:
    """One hostile input: who sends what where, and which field the 400 must name.

    `body` is a dict (sent as JSON; a lone surrogate goes out as the escape `\\ud800`), or a
    str sent as the raw JSON text (numbers such as 1e999 that Python's encoder can't write).
    `field` None: the JSON parser refuses the body as a whole ({"detail": ...}).
    """

    who: str
    path: str  # formatted with the World's ids
    body: dict[str, Any] | str
    field: str | None


def _create(**fields: Any) -> dict[str, Any]:
    body = {
        "namespace": "default",
        "pod": "{pod}",
        "container": TARGET_CONTAINER,
        "image": "busybox",
        "profile": "general",
        "reason": "checkout 502s",
        "duration_minutes": 15,
    }
    body.update(fields)
    return body


def _create_raw(duration: str) -> str:
    return json.dumps(_create()).replace('"duration_minutes": 15', f'"duration_minutes": {duration}')


REQUESTS = "/api/v1/requests"
END = "/api/v1/sessions/{running}/end"
EXTEND = "/api/v1/sessions/{running}/extend"
DENY = "/api/v1/requests/{pending}/deny"
APPROVE = "/api/v1/requests/{pending}/approve"
EXT_DENY = "/api/v1/extensions/{extension}/deny"
EXT_APPROVE = "/api/v1/extensions/{extension}/approve"

# The sixteen of the issue (the review note and the history filters are HTML, see below).
ISSUE_API_CASES = {
    "duration-1e999": Case("alice", REQUESTS, _create_raw("1e999"), None),
    "duration--1e999": Case("alice", REQUESTS, _create_raw("-1e999"), None),
    "extension-minutes-1e999": Case("alice", EXTEND, '{"minutes": 1e999, "reason": "more"}', None),
    "extension-minutes--1e999": Case("alice", EXTEND, '{"minutes": -1e999, "reason": "more"}', None),
    "json-nested-10000-deep": Case("alice", REQUESTS, '{"reason": ' + "[" * DEEP + "]" * DEEP + "}", None),
    "reason-nul": Case("alice", REQUESTS, _create(reason=f"502s{NUL}"), "reason"),
    "end-reason-nul": Case("alice", END, {"reason": f"done{NUL}"}, "reason"),
    "extension-reason-nul": Case("alice", EXTEND, {"minutes": 10, "reason": f"more{NUL}"}, "reason"),
    "deny-comment-nul": Case("bob", DENY, {"comment": f"no{NUL}"}, "comment"),
    "reason-surrogate": Case("alice", REQUESTS, _create(reason=f"502s{SURROGATE}"), "reason"),
    "end-reason-surrogate": Case("alice", END, {"reason": f"done{SURROGATE}"}, "reason"),
    "extension-reason-surrogate": Case("alice", EXTEND, {"minutes": 10, "reason": f"more{SURROGATE}"}, "reason"),
    "deny-comment-surrogate": Case("bob", DENY, {"comment": f"no{SURROGATE}"}, "comment"),
    "extension-deny-comment-surrogate": Case("bob", EXT_DENY, {"comment": f"no{SURROGATE}"}, "comment"),
}

# Their neighbours: the same attacks on the other fields and endpoints.
MORE_API_CASES = {
    "duration-NaN": Case("alice", REQUESTS, _create_raw("NaN"), None),
    "duration-Infinity": Case("alice", REQUESTS, _create_raw("Infinity"), None),
    "duration--Infinity": Case("alice", REQUESTS, _create_raw("-Infinity"), None),
    "duration-1e999-in-a-list": Case("alice", REQUESTS, _create_raw("[1e999]"), None),
    "json-nested-65-deep": Case("alice", REQUESTS, '{"reason": ' + "[" * 64 + "]" * 64 + "}", None),
    "json-array-nested-10000-deep": Case("bob", APPROVE, "[" * DEEP + "]" * DEEP, None),
    "json-object-nested-10000-deep": Case("bob", APPROVE, '{"a": ' * DEEP + "1" + "}" * DEEP, None),
    "duration-float-overflow-text": Case("alice", REQUESTS, _create(duration_minutes="1e999"), "duration_minutes"),
    "duration-huge-int": Case("alice", REQUESTS, _create(duration_minutes=10**400), "duration_minutes"),
    "extension-minutes-huge-int": Case("alice", EXTEND, {"minutes": 10**400, "reason": "more"}, "minutes"),
    "extension-minutes-big-float": Case("alice", EXTEND, {"minutes": 1e300, "reason": "more"}, "minutes"),
    "kind-nul": Case("alice", REQUESTS, _create(kind=f"pod{NUL}"), "kind"),
    "namespace-surrogate": Case("alice", REQUESTS, _create(namespace=SURROGATE), "namespace"),
    "pod-nul": Case("alice", REQUESTS, _create(pod=NUL), "pod"),
    "container-surrogate": Case("alice", REQUESTS, _create(container=SURROGATE), "container"),
    "node-nul": Case(
        "alice", REQUESTS, {"node": NUL, "image": "busybox", "profile": "sysadmin", "reason": "x", "duration_minutes": 5}, "node"
    ),
    "image-nul": Case("alice", REQUESTS, _create(image=f"busybox{NUL}"), "image"),
    "profile-surrogate": Case("alice", REQUESTS, _create(profile=SURROGATE), "profile"),
    "approve-comment-nul": Case("bob", APPROVE, {"comment": f"ok{NUL}"}, "comment"),
    "approve-comment-surrogate": Case("bob", APPROVE, {"comment": f"ok{SURROGATE}"}, "comment"),
    "end-comment-nul": Case("alice", END, {"comment": f"done{NUL}"}, "comment"),
    "revoke-reason-surrogate": Case("bob", END, {"reason": SURROGATE}, "reason"),
    "extension-approve-comment-nul": Case("bob", EXT_APPROVE, {"comment": f"ok{NUL}"}, "comment"),
    "extension-deny-comment-nul": Case("bob", EXT_DENY, {"comment": f"no{NUL}"}, "comment"),
    "extension-minutes-nul": Case("alice", EXTEND, {"minutes": f"10{NUL}", "reason": "more"}, "minutes"),
    "reason-a-list": Case("alice", REQUESTS, _create(reason=["a"]), "reason"),
    "comment-an-object": Case("bob", DENY, {"comment": {"a": 1}}, "comment"),
}


@pytest.fixture
def world(alice: Any, make_request: Any) -> World:
    return build_world(alice, make_request)


def _ids(world: World, extra: dict[str, str]) -> dict[str, str]:
    return {
        "pending": str(world.pending.pk),
        "running": str(world.running.pk),
        "extension": str(world.extension.pk),
        "ended": str(world.ended.pk),
        **extra,
    }


def _post(client: APIClient, path: str, body: dict[str, Any] | str) -> Any:
    text = body if isinstance(body, str) else json.dumps(body)  # json.dumps writes \ud800 as an escape
    return client.post(path, text, content_type="application/json")


def _fill(body: dict[str, Any] | str, ids: dict[str, str]) -> dict[str, Any] | str:
    if isinstance(body, str):
        return body.replace("{pod}", ids["pod"])
    return {k: (v.format(**ids) if isinstance(v, str) and v == "{pod}" else v) for k, v in body.items()}


def _check_api_case(case: Case, people: Any, api_client_for: Callable[..., APIClient], world: World, pod: str) -> None:
    ids = _ids(world, {"pod": pod})
    before = snapshot()
    resp = _post(api_client_for(getattr(people, case.who)), case.path.format(**ids), _fill(case.body, ids))
    assert resp.status_code == 400, resp.content[:500]
    answer = resp.json()
    if case.field is None:
        assert set(answer) == {"detail"} and answer["detail"], answer
    else:
        assert case.field in answer, answer
        value = case.body[case.field] if isinstance(case.body, dict) else None
        if isinstance(value, str) and (NUL in value or SURROGATE in value):
            assert any(FORBIDDEN_CHARACTERS_MESSAGE in m for m in answer[case.field]), answer
    assert snapshot() == before, "a refused input must write nothing"


@pytest.mark.parametrize("name", list(ISSUE_API_CASES))
def test_the_issues_api_inputs_are_400s(name: str, people: Any, api_client_for: Any, world: World, nginx_pod: str) -> None:
    _check_api_case(ISSUE_API_CASES[name], people, api_client_for, world, nginx_pod)


@pytest.mark.parametrize("name", list(MORE_API_CASES))
def test_more_hostile_api_inputs_are_400s(name: str, people: Any, api_client_for: Any, world: World, nginx_pod: str) -> None:
    _check_api_case(MORE_API_CASES[name], people, api_client_for, world, nginx_pod)


def test_json_nested_64_deep_is_still_parsed(people: Any, api_client_for: Any, world: World) -> None:
    """The limit refuses attacks, not bodies: 64 levels reach the view (which then says what's wrong)."""
    body = '{"comment": ' + "[" * 63 + "]" * 63 + "}"
    resp = _post(api_client_for(people.bob), f"/api/v1/requests/{world.pending.pk}/deny", body)
    assert resp.status_code == 400 and "comment" in resp.json(), resp.content


def test_a_finite_float_duration_still_works_as_before(people: Any, api_client_for: Any, nginx_pod: str, world: World) -> None:
    body = _create_raw("15.0").replace("{pod}", nginx_pod)
    resp = _post(api_client_for(people.alice), "/api/v1/requests", body)
    assert resp.status_code == 201, resp.content
    assert resp.json()["duration_minutes"] == 15


# --- HTML forms and pages -------------------------------------------------------------------


def _browser(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _messages(resp: Any) -> list[str]:
    return [str(m) for m in get_messages(resp.wsgi_request)]


def test_the_issues_review_note_nul_is_refused(people: Any, world: World) -> None:
    client = _browser(people.dave)  # signing in is an audit event: before the snapshot
    before = snapshot()
    resp = client.post(f"/sessions/{world.ended.pk}/review", {"note": f"checked{NUL}"})
    assert resp.status_code == 302 and resp["Location"] == f"/sessions/{world.ended.pk}/"
    assert any(FORBIDDEN_CHARACTERS_MESSAGE in m for m in _messages(resp)), _messages(resp)
    assert snapshot() == before


@pytest.mark.parametrize("field", ["user", "cluster", "namespace", "pod", "node", "command", "status", "since"])
def test_the_issues_history_filter_nul_is_a_400_naming_the_filter(field: str, people: Any, world: World) -> None:
    resp = _browser(people.dave).get(f"/sessions/history/?{field}={quote(f'x{NUL}')}")
    assert resp.status_code == 400
    text = " ".join(_messages(resp))
    assert FORBIDDEN_CHARACTERS_MESSAGE in text and field in text.lower(), text
    assert resp.context["page"].paginator.count == 0


def test_the_history_still_filters_after_a_refused_filter(people: Any, world: World) -> None:
    resp = _browser(people.dave).get("/sessions/history/?namespace=default")
    assert resp.status_code == 200 and resp.context["page"].paginator.count == 3


def test_the_request_form_refuses_nul_in_any_field(people: Any, nginx_pod: str) -> None:
    client = _browser(people.alice)  # signing in is an audit event: before the snapshot
    before = snapshot()
    resp = client.post(
        "/requests/new",
        {
            "kind": "pod",
            "namespace": "default",
            "pod": nginx_pod,
            "container": TARGET_CONTAINER,
            "image": "busybox",
            "profile": "general",
            "reason": f"502s{NUL}",
            "duration_minutes": "15",
        },
    )
    assert resp.status_code == 400
    assert any(FORBIDDEN_CHARACTERS_MESSAGE in e for e in resp.context["form"].errors["reason"])
    assert snapshot() == before


@pytest.mark.parametrize("verdict", ["approve", "deny"])
def test_the_decision_form_refuses_nul(verdict: str, people: Any, world: World) -> None:
    client = _browser(people.bob)  # signing in is an audit event: before the snapshot
    before = snapshot()
    resp = client.post(f"/requests/{world.pending.pk}/decide", {"verdict": verdict, "comment": f"x{NUL}"})
    assert resp.status_code == 302
    assert any(FORBIDDEN_CHARACTERS_MESSAGE in m for m in _messages(resp)), _messages(resp)
    assert snapshot() == before


@pytest.mark.parametrize(
    "who, path, data",
    [
        ("alice", "/sessions/{running}/end", {"reason": f"done{NUL}"}),
        ("bob", "/sessions/{running}/end", {"reason": f"revoked{NUL}"}),
        ("alice", "/sessions/{running}/extend", {"minutes": "10", "reason": f"more{NUL}"}),
        ("alice", "/sessions/{running}/extend", {"minutes": f"10{NUL}", "reason": "more"}),
        ("bob", "/sessions/extensions/{extension}/decide", {"verdict": "approve", "comment": f"ok{NUL}"}),
        ("bob", "/sessions/extensions/{extension}/decide", {"verdict": "deny", "comment": f"no{NUL}"}),
    ],
)
def test_the_session_forms_refuse_nul(who: str, path: str, data: dict[str, str], people: Any, world: World) -> None:
    client = _browser(getattr(people, who))  # signing in is an audit event: before the snapshot
    before = snapshot()
    resp = client.post(path.format(**_ids(world, {})), data)
    assert resp.status_code == 302
    assert any(FORBIDDEN_CHARACTERS_MESSAGE in m for m in _messages(resp)), _messages(resp)
    assert snapshot() == before


# --- the audit export's query ---------------------------------------------------------------


@pytest.mark.parametrize(
    "since",
    [f"2026-01-01{NUL}", "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "9999-12-31T23:59:59.999999-23:59"],
)
def test_the_audit_export_refuses_a_since_it_cannot_use(since: str, people: Any, api_client_for: Any) -> None:
    resp = api_client_for(people.dave).get(f"/api/v1/audit/export?since={quote(since)}")
    assert resp.status_code == 400, resp.content[:300]
    assert "since" in resp.json()
