"""Step-up for risky approvals: a rule's approval_reauth_minutes sends a stale approver through
re-authentication (the password, or the provider with prompt=login), then records the decision."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import User
from django.test import Client

from approvals.models import Decision
from portal.auth_audit import AUTH_METHOD, AUTH_TIME
from portal.models import AuditEvent
from tests.sso.idp import Browser, portal_login, sign_in_at_idp

pytestmark = pytest.mark.django_db

POLICY = """
rules:
  - name: prod-reauth
    match: {namespace: [default]}
    approvals: 1
    approval_reauth_minutes: 5
"""


def _age(client: Client, minutes: float) -> None:
    session = client.session
    session[AUTH_TIME] = time.time() - minutes * 60
    session.save()


def _pending(make_request: Any, requester: Any) -> Any:
    from approvals import policy

    rule = policy.current().rules[0]
    return make_request(requester, policy=policy.snapshot(rule, policy.current()))


def _approve(client: Client, req: Any) -> Any:
    return client.post(f"/requests/{req.pk}/decide", {"verdict": "approve", "comment": "ok"})


def test_a_stale_local_approver_confirms_the_password_then_the_approval_is_recorded(
    use_policy: Any, make_request: Any, alice: Any, bob: Any
) -> None:
    use_policy(POLICY)
    req = _pending(make_request, alice)
    client = Client()
    assert client.login(username="bob", password="bob-demo-pass")
    _age(client, 6)

    resp = _approve(client, req)
    assert resp.status_code == 302
    target = urlsplit(resp["Location"])
    assert target.path == "/reauth/" and parse_qs(target.query)["next"] == [f"/requests/{req.pk}/"]
    assert not Decision.objects.exists()
    assert not AuditEvent.objects.filter(action="request.approval_recorded").exists()

    page = client.get(resp["Location"])
    assert page.status_code == 200 and "Confirm it" in page.content.decode()
    wrong = client.post("/reauth/", {"password": "not-it", "next": f"/requests/{req.pk}/"})
    assert wrong.status_code == 400
    assert _approve(client, req)["Location"].startswith("/reauth/")  # still stale

    right = client.post("/reauth/", {"password": "bob-demo-pass", "next": f"/requests/{req.pk}/"})
    assert right.status_code == 302 and right["Location"] == f"/requests/{req.pk}/"
    assert AuditEvent.objects.get(action="auth.reauthenticated").data == {"method": "password"}

    resp = _approve(client, req)
    assert resp["Location"] == f"/requests/{req.pk}/"
    req.refresh_from_db()
    assert req.status == "approved"
    proof = AuditEvent.objects.get(action="request.approval_recorded").data["approver_proof"]
    assert proof["method"] == "password" and proof["authenticated_at"].endswith("Z")


def test_a_fresh_approver_is_not_asked_again(use_policy: Any, make_request: Any, alice: Any, bob: Any) -> None:
    use_policy(POLICY)
    req = _pending(make_request, alice)
    client = Client()
    assert client.login(username="bob", password="bob-demo-pass")
    _age(client, 4)
    assert _approve(client, req)["Location"] == f"/requests/{req.pk}/"
    assert Decision.objects.filter(request=req, approver=bob).exists()


def test_without_the_rule_an_old_sign_in_approves(make_request: Any, alice: Any, bob: Any) -> None:
    req = make_request(alice)
    client = Client()
    assert client.login(username="bob", password="bob-demo-pass")
    _age(client, 600)
    assert _approve(client, req)["Location"] == f"/requests/{req.pk}/"
    assert Decision.objects.filter(request=req).exists()


def test_an_api_token_cannot_approve_under_the_rule(use_policy: Any, make_request: Any, alice: Any, bob: Any,
                                                     api_client_for: Any) -> None:
    use_policy(POLICY)
    req = _pending(make_request, alice)
    resp = api_client_for(bob).post(f"/api/v1/requests/{req.pk}/approve", {"comment": "ok"}, format="json")
    assert resp.status_code == 403
    assert "approval_reauth" not in resp.json()["detail"] and "within the last 5 minutes" in resp.json()["detail"]
    assert "API token" in resp.json()["detail"]
    assert not Decision.objects.exists()
    # A denial needs no fresh sign-in: saying no is never the risky side.
    resp = api_client_for(bob).post(f"/api/v1/requests/{req.pk}/deny", {"comment": "not now"}, format="json")
    assert resp.status_code == 200


def test_the_rule_shows_in_the_api_and_the_summary(use_policy: Any, make_request: Any, alice: Any,
                                                    api_client_for: Any) -> None:
    use_policy(POLICY)
    req = _pending(make_request, alice)
    body = api_client_for(alice).get(f"/api/v1/requests/{req.pk}").json()
    assert body["policy"]["approval_reauth_minutes"] == 5
    assert "sign in again" in body["policy"]["summary"]


def test_a_bad_reauth_minutes_stops_the_policy() -> None:
    from approvals.policy.schema import PolicyError, parse

    for bad in ("0", "-1", "ten", "true", "100000"):
        with pytest.raises(PolicyError, match="approval_reauth_minutes"):
            parse(POLICY.replace("approval_reauth_minutes: 5", f"approval_reauth_minutes: {bad}"), source="p.yaml",
                  default_approvers="approvers")


def test_a_stale_sso_approver_signs_in_again_at_the_provider_then_approves(
    real_idp: Any, use_policy: Any, make_request: Any, alice: Any, settings: Any
) -> None:
    use_policy(POLICY)
    real_idp.add("pat", groups=[settings.EPHEMERA_APPROVER_GROUP])
    client, browser = Client(), Browser()
    portal_login(client, browser, "pat")
    assert client.session[AUTH_METHOD] == "sso"
    req = _pending(make_request, alice)
    _age(client, 30)

    resp = _approve(client, req)
    assert resp["Location"].startswith("/reauth/")
    to_idp = client.get(resp["Location"])
    assert to_idp["Location"].startswith("/oidc/authenticate/?reauth=1")
    at_idp = client.get(to_idp["Location"])
    query = {k: v[0] for k, v in parse_qs(urlsplit(at_idp["Location"]).query).items()}
    assert (query["prompt"], query["max_age"]) == ("login", "0")
    # The provider asks for the password again, though pat is signed in there.
    back = sign_in_at_idp(browser, at_idp["Location"], "pat", "idp-pass")
    done = client.get(back.split("testserver", 1)[1])
    assert done.status_code == 302 and done["Location"] == f"/requests/{req.pk}/"
    assert AuditEvent.objects.get(action="auth.reauthenticated").data["method"] == "sso"

    assert _approve(client, req)["Location"] == f"/requests/{req.pk}/"
    proof = AuditEvent.objects.get(action="request.approval_recorded").data["approver_proof"]
    assert proof["method"] == "sso"
    assert User.objects.get(username="pat").pk == Decision.objects.get(request=req).approver_id


def test_a_provider_that_does_not_prompt_again_does_not_count(rogue_idp: Any, use_policy: Any, make_request: Any,
                                                               alice: Any) -> None:
    import requests

    use_policy(POLICY)
    client = Client()

    def through_rogue(start: str) -> Any:
        resp = client.get(start)
        back = requests.get(resp["Location"], allow_redirects=False, timeout=10).headers["location"]
        return client.get(back.split("testserver", 1)[1])

    assert through_rogue("/oidc/authenticate/").status_code == 302
    req = _pending(make_request, alice)
    _age(client, 30)
    rogue_idp.mode = "old_auth_time"  # signs in, but says the sign-in was an hour ago
    through_rogue("/oidc/authenticate/?reauth=1&next=/")
    assert not AuditEvent.objects.filter(action="auth.reauthenticated").exists()
    assert _approve(client, req)["Location"].startswith("/reauth/")
    assert not Decision.objects.exists()
