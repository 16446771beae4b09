"""OpenID Connect sign-in against a real provider (node-oidc-provider): users, groups, roles."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from portal import permissions
from portal.auth_audit import AUTH_METHOD
from portal.models import AuditEvent, SsoIdentity
from tests.sso.idp import Browser, portal_login

pytestmark = pytest.mark.django_db


def _user(client: Client) -> Any:
    return client.get("/profile/").wsgi_request.user


def test_an_sso_login_creates_the_user_with_the_idps_groups_and_roles(real_idp: Any, settings: Any) -> None:
    real_idp.add("pat", groups=[settings.EPHEMERA_APPROVER_GROUP, "payments-oncall"], email="pat@corp.example", name="Pat")
    client = Client()
    resp, _ = portal_login(client, Browser(), "pat")
    assert resp.status_code == 302 and resp["Location"] == "/", resp.content[:500]
    user = User.objects.get(sso_identity__subject="pat")
    assert user.username == "pat" and user.email == "pat@corp.example"
    assert sorted(user.groups.values_list("name", flat=True)) == sorted([settings.EPHEMERA_APPROVER_GROUP, "payments-oncall"])
    assert permissions.is_approver(user) and not permissions.is_admin(user) and not user.has_usable_password()
    identity = SsoIdentity.objects.get(user=user)
    assert identity.issuer == real_idp.issuer
    # Signed in: the portal's pages answer, and the session says how.
    assert _user(client) == user
    assert client.session[AUTH_METHOD] == "sso"
    login = AuditEvent.objects.get(action="auth.login")
    assert login.actor == user and login.data == {"method": "sso"}
    assert set(AuditEvent.objects.filter(action="user.group_added").values_list("data__group", flat=True)) == {
        settings.EPHEMERA_APPROVER_GROUP, "payments-oncall"}


def test_a_group_removed_at_the_idp_is_gone_after_the_next_login(real_idp: Any, settings: Any) -> None:
    real_idp.add("pat", groups=[settings.EPHEMERA_APPROVER_GROUP, "payments-oncall"])
    portal_login(Client(), Browser(), "pat")
    user = User.objects.get(username="pat")
    assert permissions.is_approver(user)

    real_idp.add("pat", groups=["payments-oncall"])  # removed from the approvers at the IdP
    resp, _ = portal_login(Client(), Browser(), "pat")
    assert resp.status_code == 302
    user = User.objects.get(username="pat")
    assert list(user.groups.values_list("name", flat=True)) == ["payments-oncall"]
    assert not permissions.is_approver(User.objects.get(username="pat"))
    removed = AuditEvent.objects.get(action="user.group_removed")
    assert removed.data["group"] == settings.EPHEMERA_APPROVER_GROUP and removed.data["user"] == "pat"
    assert SsoIdentity.objects.get(user=user).groups == ["payments-oncall"]
    assert Group.objects.filter(name=settings.EPHEMERA_APPROVER_GROUP).exists()  # the group stays for others


def test_the_admin_groups_make_admins_and_leaving_them_unmakes_them(real_idp: Any, settings: Any) -> None:
    settings.OIDC_ADMIN_GROUPS = ["platform-admins"]
    real_idp.add("root-ops", groups=["platform-admins"])
    portal_login(Client(), Browser(), "root-ops")
    user = User.objects.get(username="root-ops")
    assert user.is_superuser and user.is_staff and permissions.is_admin(user)
    assert AuditEvent.objects.filter(action="user.superuser_granted").exists()

    real_idp.add("root-ops", groups=[])
    portal_login(Client(), Browser(), "root-ops")
    user = User.objects.get(username="root-ops")
    assert not user.is_superuser and not user.is_staff
    assert AuditEvent.objects.filter(action="user.superuser_revoked").exists()


def test_a_local_account_of_the_same_name_is_not_taken_over(real_idp: Any, alice: Any, settings: Any) -> None:
    real_idp.add("alice", groups=[settings.EPHEMERA_APPROVER_GROUP], email="alice@example.com")  # same e-mail, too
    client = Client()
    resp, _ = portal_login(client, Browser(), "alice")
    assert resp.status_code == 302
    sso_user = User.objects.get(sso_identity__subject="alice")
    assert sso_user.pk != alice.pk and sso_user.username == "alice-2"
    assert _user(client) == sso_user
    assert not alice.groups.exists()  # the local alice got nothing from the provider


def test_the_same_subject_is_the_same_user_even_when_renamed_at_the_idp(real_idp: Any) -> None:
    real_idp.add("pat", groups=[], email="pat@old.example")
    portal_login(Client(), Browser(), "pat")
    real_idp.add("pat", groups=[], email="pat@new.example")
    portal_login(Client(), Browser(), "pat")
    assert User.objects.filter(sso_identity__isnull=False).count() == 1
    assert User.objects.get(username="pat").email == "pat@new.example"


def test_a_user_disabled_at_the_idp_cannot_sign_in(real_idp: Any) -> None:
    real_idp.add("pat", groups=[])
    portal_login(Client(), Browser(), "pat")
    real_idp.add("pat", groups=[], disabled=True)
    client = Client()
    resp, where = portal_login(client, Browser(), "pat")
    assert resp is None and "failed=1" in where  # the provider refused; the portal never got a code
    assert not _user(client).is_authenticated


def test_a_user_deactivated_in_ephemera_is_refused_even_by_a_willing_idp(real_idp: Any) -> None:
    real_idp.add("pat", groups=[])
    portal_login(Client(), Browser(), "pat")
    User.objects.filter(username="pat").update(is_active=False)
    client = Client()
    resp, _ = portal_login(client, Browser(), "pat")
    assert resp.status_code == 403
    assert "deactivated" in resp.content.decode()
    assert not _user(client).is_authenticated
    failed = AuditEvent.objects.get(action="auth.sso_failed")
    assert "deactivated" in failed.data["reason"]


def test_a_replayed_callback_is_refused(real_idp: Any) -> None:
    real_idp.add("pat", groups=[])
    client = Client()
    resp, callback = portal_login(client, Browser(), "pat")
    assert resp.status_code == 302
    client.post("/logout/")
    # The same code and state again, in the same browser: the state was used up.
    path = callback.split("testserver", 1)[1]
    again = client.get(path)
    assert again.status_code == 403 and "already used" in again.content.decode()
    assert not _user(client).is_authenticated
    # ...and in a browser that never started this sign-in.
    other = Client()
    assert other.get(path).status_code == 403
    assert not _user(other).is_authenticated
    assert AuditEvent.objects.filter(action="auth.sso_failed").count() >= 1


def test_the_authorization_request_uses_pkce_s256_state_and_nonce(real_idp: Any) -> None:
    from urllib.parse import parse_qs, urlsplit

    resp = Client().get("/oidc/authenticate/?next=/sessions/")
    query = {k: v[0] for k, v in parse_qs(urlsplit(resp["Location"]).query).items()}
    assert resp["Location"].startswith(real_idp.issuer + "/auth?")
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) >= 43
    assert len(query["state"]) >= 32 and len(query["nonce"]) >= 32
    assert query["scope"] == "openid email profile groups" and query["client_id"] == "ephemera"
    assert "prompt" not in query


def test_after_sign_in_the_user_lands_where_they_were_going(real_idp: Any) -> None:
    real_idp.add("pat", groups=[])
    resp, _ = portal_login(Client(), Browser(), "pat", start="/oidc/authenticate/?next=/sessions/")
    assert resp["Location"] == "/sessions/"
    resp, _ = portal_login(Client(), Browser(), "pat", start="/oidc/authenticate/?next=https://evil.example/")
    assert resp["Location"] == "/"


def test_a_rotated_signing_key_is_followed(real_idp: Any) -> None:
    real_idp.add("pat", groups=[])
    first_kid = real_idp.kid
    assert portal_login(Client(), Browser(), "pat")[0].status_code == 302
    real_idp.restart()
    assert real_idp.kid != first_kid
    resp, _ = portal_login(Client(), Browser(), "pat")
    assert resp.status_code == 302 and resp["Location"] == "/"


def test_the_login_page_offers_the_provider(real_idp: Any) -> None:
    body = Client().get("/login/").content.decode()
    assert "Sign in with Test IdP" in body and 'href="/oidc/authenticate/"' in body


def test_the_login_page_without_sso_has_no_button(db: Any) -> None:
    assert "Sign in with" not in Client().get("/login/").content.decode()
    assert Client().get("/oidc/authenticate/").status_code == 404
