"""Who tried what: sign-ins, sign-outs, break-glass and refused attempts are audit events, and a
flood of refusals grows a counter, not the audit table."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from portal.audit import verify_chain
from portal.models import AuditEvent, AuditRepeat
from sessions.models import Finding

pytestmark = pytest.mark.django_db


def test_a_password_sign_in_and_sign_out_are_audited(bob: Any) -> None:
    client = Client()
    resp = client.post("/login/", {"username": "bob", "password": "bob-demo-pass"})
    assert resp.status_code == 302
    login = AuditEvent.objects.get(action="auth.login")
    assert login.actor == bob and login.data == {"method": "password"}
    client.post("/logout/")
    assert AuditEvent.objects.get(action="auth.logout").actor == bob
    assert not Finding.objects.exists()


def test_with_local_login_off_only_superusers_get_in_and_each_is_break_glass(
    bob: Any, admin_user: Any, settings: Any
) -> None:
    settings.EPHEMERA_LOCAL_LOGIN = False
    refused = Client().post("/login/", {"username": "bob", "password": "bob-demo-pass"})
    assert refused.status_code == 200 and "correct username and password" in refused.content.decode()
    assert not AuditEvent.objects.filter(action="auth.login").exists()

    client = Client()
    assert client.post("/login/", {"username": "admin", "password": "admin-demo-pass"}).status_code == 302
    login = AuditEvent.objects.get(action="auth.login")
    assert login.actor == admin_user and login.data == {"method": "password", "break_glass": True}
    finding = Finding.objects.get(kind="break_glass_login")
    assert finding.detail["user"] == "admin" and finding.detail["audit_event"] == login.pk


def test_turning_local_login_off_ends_the_password_sessions_of_non_superusers(bob: Any, settings: Any) -> None:
    client = Client()
    assert client.login(username="bob", password="bob-demo-pass")
    assert client.get("/profile/").status_code == 200
    settings.EPHEMERA_LOCAL_LOGIN = False
    assert client.get("/profile/").status_code == 302  # signed out: to the sign-in page


def test_local_login_off_shows_break_glass_under_the_sso_button(settings: Any, db: Any) -> None:
    settings.OIDC_ISSUER = "https://idp.example"
    settings.EPHEMERA_LOCAL_LOGIN = False
    body = Client().get("/login/").content.decode()
    assert "Sign in with" in body and 'id="break-glass"' in body and "administrators only" in body


def test_refusals_are_audited_once_per_window_and_counted(make_request: Any, alice: Any, dave: Any) -> None:
    req = make_request(alice)
    client = Client()
    client.force_login(dave)  # an auditor sees the request but may not decide it
    for _ in range(5):
        resp = client.post(f"/requests/{req.pk}/decide", {"verdict": "approve", "comment": ""})
        assert resp.status_code == 403
    refusals = AuditEvent.objects.filter(action="access.refused")
    assert refusals.count() == 1
    first = refusals.get()
    assert first.actor == dave and first.data["target"] == f"POST /requests/{req.pk}/decide"
    assert AuditRepeat.objects.get().count == 4

    AuditRepeat.objects.update(window_ends=timezone.now() - timedelta(seconds=1))  # the window is over
    client.post(f"/requests/{req.pk}/decide", {"verdict": "approve", "comment": ""})
    second = AuditEvent.objects.filter(action="access.refused").order_by("-id").first()
    assert second is not None and second.pk != first.pk and second.data["repeats"] == 4
    assert AuditRepeat.objects.get().count == 0
    assert verify_chain() >= 2


def test_refusals_of_different_things_are_each_audited(make_request: Any, alice: Any, dave: Any) -> None:
    client = Client()
    client.force_login(dave)
    for req in (make_request(alice), make_request(alice)):
        assert client.post(f"/requests/{req.pk}/decide", {"verdict": "approve", "comment": ""}).status_code == 403
    assert client.get("/tokens/").status_code == 403
    assert AuditEvent.objects.filter(action="access.refused").count() == 3
