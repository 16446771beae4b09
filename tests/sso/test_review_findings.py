"""The holes a security review of the SSO work found, each shut and kept shut."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from portal.auth_audit import AUTH_TIME
from portal.models import AuditEvent, SecurityKey
from portal.sso import discovery
from portal.sso.recheck import CHECKED_AT

pytestmark = pytest.mark.django_db
PAGE = {"HTTP_ACCEPT": "text/html"}
REAUTH_POLICY = """
rules:
  - name: prod-reauth
    approvals: 1
    approval_reauth_minutes: 5
"""


def _through_rogue(client: Client, start: str = "/oidc/authenticate/") -> Any:
    resp = client.get(start, **PAGE)
    back = requests.get(resp["Location"], allow_redirects=False, timeout=10).headers["location"]
    return client.get(back.split("testserver", 1)[1], **PAGE)


def _age(client: Client, key: str, seconds: float = 3600) -> None:
    session = client.session
    session[key] = time.time() - seconds
    session.save()


def test_adding_or_removing_a_key_needs_a_recent_sign_in(bob: Any) -> None:
    client = Client()
    assert client.login(username="bob", password="bob-demo-pass")
    _age(client, AUTH_TIME, 11 * 60)  # a stolen cookie: signed in long ago
    resp = client.post("/profile/keys/options")
    assert resp.status_code == 403 and resp.json()["reauth"].startswith("/reauth/")
    resp = client.post("/profile/keys/", data=json.dumps({"name": "k", "credential": {}}), content_type="application/json")
    assert resp.status_code == 403
    key = SecurityKey.objects.create(user=bob, name="k", credential_id="AAAA", public_key=b"\x00", rp_id="testserver")
    resp = client.post(f"/profile/keys/{key.pk}/remove")
    assert resp.status_code == 302 and resp["Location"].startswith("/reauth/")
    assert SecurityKey.objects.filter(pk=key.pk).exists()


def test_an_extension_under_a_step_up_rule_needs_the_same_proof(use_policy: Any, make_request: Any, alice: Any,
                                                                bob: Any, api_client_for: Any) -> None:
    from approvals import policy
    from sessions.models import DebugSession, SessionExtension

    use_policy(REAUTH_POLICY)
    req = make_request(alice, policy=policy.snapshot(policy.current().rules[0], policy.current()), status="approved")
    now = timezone.now()
    session = DebugSession.objects.create(request=req, status="running", created_at=now, namespace="default", pod="p",
                                          container_name="debugger-x", started_at=now,
                                          expires_at=now + timezone.timedelta(minutes=10))
    ext = SessionExtension.objects.create(session=session, requester=alice, minutes=10, reason="more", created_at=now)

    assert api_client_for(bob).post(f"/api/v1/extensions/{ext.pk}/approve", {"comment": ""}, format="json").status_code == 403
    client = Client()
    assert client.login(username="bob", password="bob-demo-pass")
    _age(client, AUTH_TIME)
    resp = client.post(f"/sessions/extensions/{ext.pk}/decide", {"verdict": "approve", "comment": ""})
    assert resp.status_code == 302 and resp["Location"].startswith("/reauth/")
    ext.refresh_from_db()
    assert ext.status == "pending"
    _age(client, AUTH_TIME, 60)
    client.post(f"/sessions/extensions/{ext.pk}/decide", {"verdict": "approve", "comment": ""})
    ext.refresh_from_db()
    assert ext.status == "approved"
    extended = AuditEvent.objects.get(action="session.extended")
    assert extended.data["approver_proof"]["method"] == "password"


def test_an_sso_sign_in_without_auth_time_proves_no_recent_sign_in(rogue_idp: Any, use_policy: Any, make_request: Any,
                                                                   alice: Any) -> None:
    from approvals import policy
    from approvals.models import Decision

    use_policy(REAUTH_POLICY)
    rogue_idp.mode = "no_auth_time"
    client = Client()
    assert _through_rogue(client).status_code == 302
    assert rogue_idp.asked[-1]["max_age"] == str(8 * 3600)  # asked for, so providers send auth_time
    req = make_request(alice, policy=policy.snapshot(policy.current().rules[0], policy.current()))
    resp = client.post(f"/requests/{req.pk}/decide", {"verdict": "approve", "comment": ""})
    assert resp["Location"].startswith("/reauth/") and not Decision.objects.exists()


def test_a_re_check_that_comes_back_as_someone_else_switches_nobody(rogue_idp: Any) -> None:
    client = Client()
    _through_rogue(client)
    first = User.objects.get(sso_identity__subject="rogue-user-1")
    _age(client, CHECKED_AT)
    rogue_idp.sub = "rogue-user-2"  # someone else signed in at the provider meanwhile
    page = client.get("/profile/", **PAGE)
    assert page["Location"].startswith("/oidc/authenticate/?silent=1")
    resp = _through_rogue(client, page["Location"])
    assert resp.status_code == 403 and "another account" in resp.content.decode()
    user = client.get("/profile/").wsgi_request.user
    assert not user.is_authenticated  # signed out, not switched
    assert first.pk != getattr(user, "pk", None)


def test_an_error_answer_without_a_known_state_changes_nothing_and_floods_nothing(rogue_idp: Any, bob: Any) -> None:
    client = Client()
    assert client.login(username="bob", password="bob-demo-pass")
    for i in range(5):
        resp = client.get(f"/oidc/callback/?error=login_required&error_description=noise-{i}&state=forged")
        assert resp.status_code == 403
    assert client.get("/profile/").wsgi_request.user.is_authenticated  # not signed out by a forged answer
    assert AuditEvent.objects.filter(action="auth.sso_failed").count() == 1


def test_an_issuer_with_a_trailing_slash_signs_in(rogue_idp: Any) -> None:
    rogue_idp.issuer_suffix = "/"
    discovery.forget()
    resp = _through_rogue(Client())
    assert resp.status_code == 302 and resp["Location"] == "/"


def test_discovery_refuses_plain_http_endpoints_for_an_https_issuer() -> None:
    doc = {"issuer": "https://idp.example", "authorization_endpoint": "https://idp.example/auth",
           "token_endpoint": "https://idp.example/token", "userinfo_endpoint": "https://idp.example/me",
           "jwks_uri": "http://idp.example/jwks"}
    with pytest.raises(discovery.DiscoveryError, match="jwks_uri"):
        discovery.parse(doc, "https://idp.example", "u")
    doc["jwks_uri"] = "https://idp.example/jwks"
    assert discovery.parse(doc, "https://idp.example", "u").jwks_uri == "https://idp.example/jwks"
    with pytest.raises(discovery.DiscoveryError, match="names issuer"):
        discovery.parse({**doc, "issuer": "https://evil.example"}, "https://idp.example", "u")
    with pytest.raises(discovery.DiscoveryError, match="none of"):
        discovery.parse({**doc, "id_token_signing_alg_values_supported": ["HS256", "none"]}, "https://idp.example", "u")


def test_deeply_nested_json_is_a_clear_400_not_a_crash(bob: Any, use_policy: Any, make_request: Any, alice: Any) -> None:
    from approvals import policy

    client = Client()
    client.force_login(bob)
    deep = "[" * 100000 + "]" * 100000
    resp = client.post("/profile/keys/", data=deep, content_type="application/json")
    assert resp.status_code in (400, 403)
    use_policy(REAUTH_POLICY.replace("approval_reauth_minutes: 5", "approval_webauthn: true"))
    req = make_request(alice, policy=policy.snapshot(policy.current().rules[0], policy.current()))
    SecurityKey.objects.create(user=bob, name="k", credential_id="AAAA", public_key=b"\x00", rp_id="testserver")
    client.post(f"/requests/{req.pk}/approval-key")
    resp = client.post(f"/requests/{req.pk}/decide", {"verdict": "approve", "comment": "", "webauthn": deep})
    assert resp.status_code == 302
