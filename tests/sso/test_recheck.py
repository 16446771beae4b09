"""Signed-in SSO users are re-checked with the provider (prompt=none) every OIDC_RECHECK_MINUTES:
still there, they come straight back with their groups synced again; disabled there, they are
signed out here."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import User
from django.test import Client

from portal.models import AuditEvent
from portal.sso.recheck import CHECKED_AT
from tests.sso.idp import Browser, portal_login, sign_in_at_idp

pytestmark = pytest.mark.django_db
PAGE = {"HTTP_ACCEPT": "text/html,application/xhtml+xml"}


def _age(client: Client) -> None:
    session = client.session
    session[CHECKED_AT] = time.time() - 3600
    session.save()


def _open_page(client: Client, browser: Browser, path: str) -> Any:
    """A page navigation, following the portal's redirect through the provider and back."""
    resp = client.get(path, **PAGE)
    if resp.status_code != 302 or not resp["Location"].startswith("/oidc/authenticate/"):
        return resp
    start = client.get(resp["Location"], **PAGE)
    query = {k: v[0] for k, v in parse_qs(urlsplit(start["Location"]).query).items()}
    assert query["prompt"] == "none"
    back = sign_in_at_idp(browser, start["Location"], "never-asked", "never-asked")
    return client.get(back.split("testserver", 1)[1], **PAGE)


def test_a_user_still_signed_in_at_the_provider_comes_straight_back_with_groups_synced(real_idp: Any) -> None:
    real_idp.add("pat", groups=["approvers"])
    client, browser = Client(), Browser()
    portal_login(client, browser, "pat")
    assert client.get("/profile/", **PAGE).status_code == 200  # just signed in: no check due
    real_idp.add("pat", groups=["auditors"])
    _age(client)
    resp = _open_page(client, browser, "/profile/")
    assert resp.status_code == 302 and resp["Location"] == "/profile/"
    assert client.get("/profile/", **PAGE).status_code == 200
    assert list(User.objects.get(username="pat").groups.values_list("name", flat=True)) == ["auditors"]


def test_a_user_disabled_at_the_provider_is_signed_out_at_the_next_check(real_idp: Any) -> None:
    real_idp.add("pat", groups=["approvers"])
    client, browser = Client(), Browser()
    portal_login(client, browser, "pat")
    real_idp.add("pat", groups=["approvers"], disabled=True)
    _age(client)
    resp = _open_page(client, browser, "/profile/")
    assert resp.status_code == 302 and resp["Location"] == "/login/"
    assert not client.get("/profile/").wsgi_request.user.is_authenticated
    failed = AuditEvent.objects.get(action="auth.sso_check_failed")
    assert failed.actor == User.objects.get(username="pat") and failed.data["error"]
    assert AuditEvent.objects.filter(action="auth.logout").exists()


def test_api_calls_and_password_users_are_not_sent_to_the_provider(real_idp: Any, bob: Any) -> None:
    real_idp.add("pat", groups=[])
    client = Client()
    portal_login(client, Browser(), "pat")
    _age(client)
    assert client.get("/api/v1/requests", HTTP_ACCEPT="application/json").status_code == 200
    assert client.get("/profile/", HTTP_X_EPHEMERA_BACKGROUND="1", **PAGE).status_code == 200
    local = Client()
    assert local.login(username="bob", password="bob-demo-pass")
    assert local.get("/profile/", **PAGE).status_code == 200
