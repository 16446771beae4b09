"""Self-service API tokens: made on the profile page with an expiry, seen once, listed, revoked."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from portal.models import ApiToken, AuditEvent

pytestmark = pytest.mark.django_db


def _signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _api(token: str) -> Any:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client.get("/api/v1/requests")


def _create(client: Client, name: str = "build-bot-7", days: str = "30") -> str:
    resp = client.post("/profile/tokens/", {"name": name, "days": days})
    assert resp.status_code == 200, resp.status_code
    assert resp["Cache-Control"] == "no-store"
    body = resp.content.decode()
    start = body.index('id="token-value">') + len('id="token-value">')
    return body[start:body.index("</pre>", start)]


def test_a_user_makes_a_token_sees_it_once_and_it_works(alice: Any, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    client = _signed_in(alice)
    raw = _create(client)
    assert raw.startswith("eph_") and len(raw) > 40
    assert _api(raw).status_code == 200
    token = ApiToken.objects.get(user=alice)
    assert token.name == "build-bot-7" and token.last_used_at is not None
    assert timedelta(days=29, hours=23) < token.expires_at - timezone.now() <= timedelta(days=30)
    page = client.get("/profile/").content.decode()
    assert "build-bot-7" in page and raw[:12] in page and raw not in page  # listed, never shown again
    assert AuditEvent.objects.filter(action="token.issued").exists()
    assert raw not in caplog.text and raw not in str(list(AuditEvent.objects.values_list("data", flat=True)))


@pytest.mark.parametrize(("name", "days", "says"), [
    ("", "30", "name"), ("x" * 101, "30", "name"), ("ok", "91", "1 to 90"), ("ok", "0", "1 to 90"), ("ok", "soon", "1 to 90"),
])
def test_a_bad_token_form_makes_nothing(alice: Any, name: str, days: str, says: str) -> None:
    client = _signed_in(alice)
    resp = client.post("/profile/tokens/", {"name": name, "days": days}, follow=True)
    assert says in resp.content.decode()
    assert not ApiToken.objects.exists()


def test_an_expired_token_stops_working(alice: Any) -> None:
    raw = _create(_signed_in(alice), days="1")
    assert _api(raw).status_code == 200
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    resp = _api(raw)
    assert resp.status_code == 401
    page = _signed_in(alice).get("/profile/").content.decode()
    assert "expired" in page


def test_the_owner_revokes_and_the_token_stops(alice: Any) -> None:
    client = _signed_in(alice)
    raw = _create(client)
    token = ApiToken.objects.get()
    resp = client.post(f"/profile/tokens/{token.pk}/revoke")
    assert resp.status_code == 302
    assert _api(raw).status_code == 401
    assert AuditEvent.objects.filter(action="token.revoked").exists()
    assert f'data-token="{token.pk}"' not in client.get("/profile/").content.decode()


def test_someone_elses_token_is_not_theirs_to_revoke_but_an_admins(alice: Any, eve: Any, admin_user: Any) -> None:
    raw = _create(_signed_in(alice))
    token = ApiToken.objects.get()
    resp = _signed_in(eve).post(f"/profile/tokens/{token.pk}/revoke")
    assert resp.status_code == 403
    assert _api(raw).status_code == 200
    assert _signed_in(eve).get("/tokens/").status_code == 403

    admin = _signed_in(admin_user)
    listing = admin.get("/tokens/").content.decode()
    assert "alice" in listing and "build-bot-7" in listing and raw not in listing
    resp = admin.post(f"/profile/tokens/{token.pk}/revoke", {"next": "all"})
    assert resp.status_code == 302 and resp["Location"] == "/tokens/"
    assert _api(raw).status_code == 401


def test_the_token_pages_need_a_sign_in(alice: Any) -> None:
    assert Client().post("/profile/tokens/", {"name": "x", "days": "1"}).status_code == 302
    assert not ApiToken.objects.exists()


def test_the_profile_page_is_well_formed(alice: Any) -> None:
    body = _signed_in(alice).get("/profile/").content.decode()
    title = body[body.index("<title>"):body.index("</title>")]
    assert "<" not in title[len("<title>"):] and "Profile" in title
    assert body.count('id="key-form"') == 1 and body.count('id="token-form"') == 1
