"""Every ID token the portal should refuse is refused (a rogue provider speaking the real wire
format), and the same provider's correct token signs in, so each refusal is the token's fault."""

from __future__ import annotations

import html
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from portal.models import AuditEvent, SsoIdentity

pytestmark = pytest.mark.django_db


def _login(client: Client) -> Any:
    start = client.get("/oidc/authenticate/")
    assert start.status_code == 302
    import requests

    back = requests.get(start["Location"], allow_redirects=False, timeout=10)  # the rogue answers at once
    location = back.headers["location"]
    return client.get(location.split("testserver", 1)[1])


def test_the_rogue_providers_correct_token_signs_in(rogue_idp: Any) -> None:
    client = Client()
    resp = _login(client)
    assert resp.status_code == 302 and resp["Location"] == "/"
    assert User.objects.filter(sso_identity__subject="rogue-user-1", username="rogue-user-1").exists()


@pytest.mark.parametrize(("mode", "says"), [
    ("foreign_signature", "signature does not match"),
    ("wrong_audience", "for another client"),
    ("several_audiences", "several audiences"),
    ("no_nonce", "nonce is missing"),
    ("wrong_nonce", "nonce is missing or not this login"),
    ("wrong_issuer", "another issuer"),
    ("expired", "expired"),
    ("alg_none", "signed with 'none'"),
    ("hs256", "signed with 'HS256'"),
])
def test_a_bad_id_token_is_refused_and_audited(rogue_idp: Any, mode: str, says: str) -> None:
    rogue_idp.mode = mode
    client = Client()
    resp = _login(client)
    assert resp.status_code == 403
    body = html.unescape(resp.content.decode())
    assert says in body, body[:800]
    assert not client.get("/profile/").wsgi_request.user.is_authenticated
    assert not SsoIdentity.objects.exists() and not User.objects.exists()
    refused = AuditEvent.objects.get(action="auth.sso_failed")
    assert says in refused.data["reason"]
    assert "rogue-access" not in str(refused.data)  # no token in the trail


def test_an_unreachable_provider_is_a_clear_503(settings: Any, db: Any) -> None:
    import socket

    from portal.sso import discovery

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    settings.OIDC_ISSUER = f"http://127.0.0.1:{port}"
    settings.OIDC_CLIENT_ID, settings.OIDC_CLIENT_SECRET = "ephemera", "x" * 20
    discovery.forget()
    try:
        resp = Client().get("/oidc/authenticate/")
        assert resp.status_code == 503 and "cannot be reached" in resp.content.decode()
    finally:
        discovery.forget()
