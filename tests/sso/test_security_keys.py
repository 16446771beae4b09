"""approval_webauthn without a browser: what is refused before any key is touched. The touch
itself, with Chromium's virtual authenticator, is tests/browser/test_security_key.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from approvals.models import Decision
from portal.models import AuditEvent, SecurityKey

pytestmark = pytest.mark.django_db

POLICY = """
rules:
  - name: keyed
    approvals: 1
    approval_webauthn: true
"""


def _keyed(use_policy: Any, make_request: Any, requester: Any) -> Any:
    from approvals import policy

    use_policy(POLICY)
    return make_request(requester, policy=policy.snapshot(policy.current().rules[0], policy.current()))


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_an_approval_without_a_touch_records_nothing(use_policy: Any, make_request: Any, alice: Any, bob: Any) -> None:
    req = _keyed(use_policy, make_request, alice)
    resp = _client(bob).post(f"/requests/{req.pk}/decide", {"verdict": "approve", "comment": "", "webauthn": ""}, follow=True)
    assert "Nothing was recorded" in resp.content.decode() and "security key touch" in resp.content.decode()
    assert not Decision.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="request.").exists()


def test_a_forged_touch_records_nothing(use_policy: Any, make_request: Any, alice: Any, bob: Any) -> None:
    req = _keyed(use_policy, make_request, alice)
    client = _client(bob)
    SecurityKey.objects.create(user=bob, name="k", credential_id="AAAA", public_key=b"\x00", rp_id="testserver")
    assert client.post(f"/requests/{req.pk}/approval-key").status_code == 200
    forged = json.dumps({"id": "AAAA", "rawId": "AAAA", "type": "public-key",
                         "response": {"clientDataJSON": "e30", "authenticatorData": "AAAA", "signature": "AAAA"}})
    resp = client.post(f"/requests/{req.pk}/decide", {"verdict": "approve", "comment": "", "webauthn": forged}, follow=True)
    assert "did not verify" in resp.content.decode()
    assert not Decision.objects.exists()


def test_denying_needs_no_touch(use_policy: Any, make_request: Any, alice: Any, bob: Any) -> None:
    req = _keyed(use_policy, make_request, alice)
    _client(bob).post(f"/requests/{req.pk}/decide", {"verdict": "deny", "comment": "no"})
    req.refresh_from_db()
    assert req.status == "denied"


def test_the_api_cannot_approve_under_the_rule(use_policy: Any, make_request: Any, alice: Any, bob: Any,
                                               api_client_for: Any) -> None:
    req = _keyed(use_policy, make_request, alice)
    resp = api_client_for(bob).post(f"/api/v1/requests/{req.pk}/approve", {"comment": ""}, format="json")
    assert resp.status_code == 403 and "security key" in resp.json()["detail"]
    assert not Decision.objects.exists()


def test_only_a_decider_gets_a_challenge_and_only_under_the_rule(use_policy: Any, make_request: Any, alice: Any,
                                                                  bob: Any, dave: Any) -> None:
    req = _keyed(use_policy, make_request, alice)
    assert _client(dave).post(f"/requests/{req.pk}/approval-key").status_code == 403
    assert _client(alice).post(f"/requests/{req.pk}/approval-key").status_code == 403  # their own
    no_key = _client(bob).post(f"/requests/{req.pk}/approval-key")
    assert no_key.status_code == 403  # no key registered: told where to register one
    plain = make_request(alice)
    assert _client(bob).post(f"/requests/{plain.pk}/approval-key").status_code == 409


def test_the_challenge_names_the_request(use_policy: Any, make_request: Any, alice: Any, bob: Any) -> None:
    from webauthn.helpers import base64url_to_bytes

    req = _keyed(use_policy, make_request, alice)
    SecurityKey.objects.create(user=bob, name="k", credential_id="AAAA", public_key=b"\x00", rp_id="testserver")
    options = _client(bob).post(f"/requests/{req.pk}/approval-key").json()
    challenge = base64url_to_bytes(options["challenge"])
    assert challenge.startswith(b"ephemera-request:" + req.pk.bytes) and len(challenge) == 17 + 16 + 16
    assert options["rpId"] == "testserver" and [c["id"] for c in options["allowCredentials"]] == ["AAAA"]


def test_a_bad_registration_saves_nothing(bob: Any) -> None:
    client = _client(bob)
    assert client.post("/profile/keys/options").status_code == 200
    resp = client.post("/profile/keys/", data=json.dumps({"name": "k", "credential": {"id": "x"}}),
                       content_type="application/json")
    assert resp.status_code == 400 and "not registered" in resp.json()["detail"]
    # Without asking for options first (or twice with one challenge): refused too.
    again = client.post("/profile/keys/", data=json.dumps({"name": "k", "credential": {}}), content_type="application/json")
    assert again.status_code == 400 and "try again" in again.json()["detail"]
    assert not SecurityKey.objects.exists()


def test_a_key_is_removed_by_its_owner_only(alice: Any, bob: Any) -> None:
    key = SecurityKey.objects.create(user=bob, name="k", credential_id="AAAA", public_key=b"\x00", rp_id="testserver")
    assert _client(alice).post(f"/profile/keys/{key.pk}/remove").status_code == 404
    assert SecurityKey.objects.filter(pk=key.pk).exists()
    assert _client(bob).post(f"/profile/keys/{key.pk}/remove").status_code == 302
    assert not SecurityKey.objects.exists()
    assert AuditEvent.objects.get(action="user.security_key_removed").data["key"] == "k"


def test_approval_webauthn_must_be_a_boolean() -> None:
    from approvals.policy.schema import PolicyError, parse

    for bad in ("yes-please", "1", "[]"):
        with pytest.raises(PolicyError, match="approval_webauthn"):
            parse(POLICY.replace("approval_webauthn: true", f"approval_webauthn: {bad}"), source="p.yaml",
                  default_approvers="approvers")
