"""The JSON API: every endpoint against every kind of caller, plus the shapes of answers."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from approvals import services
from approvals.models import DebugRequest
from portal.models import ApiToken, AuditEvent
from portal.tokens import create_token, revoke_token
from sessions.models import DebugSession
from tests.conftest import TARGET_CONTAINER

CALLERS = ["alice", "bob", "dave", "eve", "anonymous", "bad_token"]


@pytest.fixture
def client_as(people: Any, api_client_for: Any) -> Any:
    def make(who: str) -> APIClient:
        if who == "anonymous":
            return api_client_for(None)
        if who == "bad_token":
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION="Bearer eph_not-a-real-token")
            return client
        return api_client_for(getattr(people, who))

    return make


@pytest.fixture
def pending(people: Any, make_request: Any) -> DebugRequest:
    return make_request(people.alice)


def _approved(people: Any, make_request: Any) -> DebugRequest:
    req = make_request(people.alice)
    services.request_approve(request_id=req.pk, approver=people.carol, origin=None)
    return req


def _expect_unauthenticated(resp: Any) -> None:
    assert resp.status_code == 401, resp.content
    assert resp["WWW-Authenticate"].startswith("Bearer")


EXPECTED_DETAIL = {"alice": 200, "bob": 200, "dave": 200, "eve": 404, "anonymous": 401, "bad_token": 401}
EXPECTED_APPROVE = {"alice": 403, "bob": 200, "dave": 403, "eve": 404, "anonymous": 401, "bad_token": 401}
EXPECTED_CANCEL = {"alice": 200, "bob": 403, "dave": 403, "eve": 404, "anonymous": 401, "bad_token": 401}
EXPECTED_END = {"alice": 200, "bob": 200, "dave": 403, "eve": 404, "anonymous": 401, "bad_token": 401}


@pytest.mark.parametrize("who", CALLERS)
def test_list_shows_only_visible_requests(who: str, client_as: Any, pending: DebugRequest) -> None:
    resp = client_as(who).get("/api/v1/requests")
    if who in ("anonymous", "bad_token"):
        return _expect_unauthenticated(resp)
    assert resp.status_code == 200
    ids = [r["id"] for r in resp.json()]
    assert ids == ([] if who == "eve" else [str(pending.pk)])


@pytest.mark.parametrize("who", CALLERS)
def test_detail(who: str, client_as: Any, pending: DebugRequest) -> None:
    resp = client_as(who).get(f"/api/v1/requests/{pending.pk}")
    assert resp.status_code == EXPECTED_DETAIL[who], resp.content
    if resp.status_code == 200:
        body = resp.json()
        assert body["id"] == str(pending.pk) and body["status"] == "pending" and body["session"] is None


@pytest.mark.parametrize("who", CALLERS)
def test_approve(who: str, client_as: Any, pending: DebugRequest) -> None:
    resp = client_as(who).post(f"/api/v1/requests/{pending.pk}/approve", {"comment": "ok"}, format="json")
    assert resp.status_code == EXPECTED_APPROVE[who], resp.content
    pending.refresh_from_db()
    assert pending.status == ("approved" if who == "bob" else "pending")
    if who == "bob":
        session = resp.json()["session"]
        assert session["status"] == "provisioning"
        assert session["websocket_path"] == f"/ws/sessions/{session['id']}/terminal"


@pytest.mark.parametrize("who", CALLERS)
def test_deny(who: str, client_as: Any, pending: DebugRequest) -> None:
    resp = client_as(who).post(f"/api/v1/requests/{pending.pk}/deny", {"comment": "not today"}, format="json")
    assert resp.status_code == EXPECTED_APPROVE[who], resp.content
    pending.refresh_from_db()
    assert pending.status == ("denied" if who == "bob" else "pending")


@pytest.mark.parametrize("who", CALLERS)
def test_cancel(who: str, client_as: Any, pending: DebugRequest) -> None:
    resp = client_as(who).post(f"/api/v1/requests/{pending.pk}/cancel")
    assert resp.status_code == EXPECTED_CANCEL[who], resp.content
    pending.refresh_from_db()
    assert pending.status == ("cancelled" if who == "alice" else "pending")


@pytest.mark.parametrize("who", CALLERS)
def test_session_detail(who: str, client_as: Any, people: Any, make_request: Any) -> None:
    session = _approved(people, make_request).session
    resp = client_as(who).get(f"/api/v1/sessions/{session.pk}")
    assert resp.status_code == EXPECTED_DETAIL[who], resp.content
    if resp.status_code == 200:
        assert resp.json()["status"] == "provisioning"


@pytest.mark.parametrize("who", CALLERS)
def test_session_end(who: str, client_as: Any, people: Any, make_request: Any) -> None:
    session = _approved(people, make_request).session
    resp = client_as(who).post(f"/api/v1/sessions/{session.pk}/end", {"reason": "incident over"}, format="json")
    assert resp.status_code == EXPECTED_END[who], resp.content
    session.refresh_from_db()
    assert session.status == ("ended" if who in ("alice", "bob") else "provisioning")
    if who in ("alice", "bob"):
        assert session.end_reason == ("user" if who == "alice" else "revoked")
        assert resp.json()["status"] == "ended"


def test_a_decided_request_answers_409(client_as: Any, people: Any, make_request: Any) -> None:
    req = _approved(people, make_request)
    for action in ("approve", "deny", "cancel"):
        who = "alice" if action == "cancel" else "bob"
        resp = client_as(who).post(f"/api/v1/requests/{req.pk}/{action}", {"comment": "x"}, format="json")
        assert resp.status_code == 409, (action, resp.content)
        assert "already approved" in resp.json()["detail"]


def test_deny_without_a_comment_is_400_and_changes_nothing(client_as: Any, pending: DebugRequest) -> None:
    resp = client_as("bob").post(f"/api/v1/requests/{pending.pk}/deny", {}, format="json")
    assert resp.status_code == 400 and "comment" in resp.json()
    pending.refresh_from_db()
    assert pending.status == "pending" and not AuditEvent.objects.exists()


def test_unknown_ids_are_404(client_as: Any) -> None:
    assert client_as("bob").get("/api/v1/requests/00000000-0000-0000-0000-000000000000").status_code == 404
    assert client_as("bob").get("/api/v1/requests/not-a-uuid").status_code == 404
    assert client_as("bob").post("/api/v1/sessions/00000000-0000-0000-0000-000000000000/end").status_code == 404


def test_create_returns_201_with_the_request(client_as: Any, nginx_pod: str) -> None:
    resp = client_as("alice").post(
        "/api/v1/requests",
        {
            "namespace": "default",
            "pod": nginx_pod,
            "container": TARGET_CONTAINER,
            "image": "busybox",
            "profile": "general",
            "reason": "checkout 502s",
            "duration_minutes": 15,
        },
        format="json",
    )
    assert resp.status_code == 201, resp.content
    body = resp.json()
    assert body["status"] == "pending" and body["requester"] == "alice" and body["pod"] == nginx_pod
    assert DebugRequest.objects.get(pk=body["id"]).requester.username == "alice"


def test_create_with_bad_fields_returns_400_per_field_and_writes_nothing(client_as: Any, kube: Any) -> None:
    resp = client_as("alice").post(
        "/api/v1/requests",
        {
            "namespace": "default",
            "pod": "ghost",
            "container": TARGET_CONTAINER,
            "image": "nginx:latest",
            "profile": "general",
            "reason": "",
            "duration_minutes": 15,
        },
        format="json",
    )
    assert resp.status_code == 400
    body = resp.json()
    assert set(body) == {"pod", "image", "reason"}
    assert all(isinstance(v, list) and v for v in body.values())
    assert not DebugRequest.objects.exists() and not AuditEvent.objects.exists()


@pytest.mark.parametrize("who", ["anonymous", "bad_token"])
def test_create_needs_authentication(who: str, client_as: Any) -> None:
    _expect_unauthenticated(client_as(who).post("/api/v1/requests", {"reason": "x"}, format="json"))
    assert not DebugRequest.objects.exists()


def test_a_json_array_body_is_400(client_as: Any) -> None:
    resp = client_as("alice").post("/api/v1/requests", [1, 2], format="json")
    assert resp.status_code == 400


def test_revoked_tokens_and_inactive_users_are_rejected(people: Any) -> None:
    raw = create_token(people.alice)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/v1/requests").status_code == 200
    assert ApiToken.objects.get(user=people.alice).last_used_at is not None
    revoke_token(ApiToken.objects.get(user=people.alice).pk)
    _expect_unauthenticated(client.get("/api/v1/requests"))
    raw = create_token(people.eve)
    people.eve.is_active = False
    people.eve.save()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    _expect_unauthenticated(client.get("/api/v1/requests"))


def test_tokens_are_stored_only_as_digests(people: Any) -> None:
    raw = create_token(people.alice, name="ci")
    token = ApiToken.objects.get(user=people.alice)
    assert raw not in (token.digest, token.prefix, token.name) and len(token.digest) == 64
    assert raw.startswith(token.prefix)


def test_session_auth_requires_csrf(people: Any, pending: DebugRequest) -> None:
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(people.bob)
    assert browser.get(f"/api/v1/requests/{pending.pk}").status_code == 200
    resp = browser.post(f"/api/v1/requests/{pending.pk}/approve", {"comment": "ok"}, content_type="application/json")
    assert resp.status_code == 403 and "CSRF" in resp.json()["detail"]
    pending.refresh_from_db()
    assert pending.status == "pending"


def test_the_openapi_schema_is_served(client_as: Any) -> None:
    resp = client_as("anonymous").get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert resp.status_code == 200
    text = resp.content.decode()
    for path in ("/api/v1/requests", "/api/v1/requests/{id}/approve", "/api/v1/sessions/{id}/end"):
        assert path in text
    assert "bearerAuth" in text


def test_ending_twice_is_idempotent(client_as: Any, people: Any, make_request: Any) -> None:
    session = _approved(people, make_request).session
    assert client_as("alice").post(f"/api/v1/sessions/{session.pk}/end").status_code == 200
    assert client_as("bob").post(f"/api/v1/sessions/{session.pk}/end").status_code == 200
    assert AuditEvent.objects.filter(session=session, action="session.ended").count() == 1
    assert DebugSession.objects.get(pk=session.pk).end_reason == "user"


def test_the_api_reference_is_served_from_our_own_files(client_as: Any) -> None:
    # Public like the schema it shows (no data in it); every call it makes needs a sign-in or a token.
    resp = client_as("anonymous").get("/api/docs/")
    assert resp.status_code == 200
    html = resp.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html and "cdn" not in html.lower()
    policy = resp["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "'unsafe-inline'" in policy.split("style-src")[1].split(";")[0]
    assert "unsafe-inline" not in policy.split("style-src")[0]
    script = client_as("anonymous").get("/api/docs/?script=")
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert client_as("anonymous").get("/api/v1/requests").status_code == 401
