"""Role changes are audit events, with who made them: through the real admin, and through the ORM."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from portal.audit import verify_chain
from portal.models import ApiToken, AuditEvent
from portal.tokens import create_token, revoke_token

pytestmark = pytest.mark.django_db


def _events(prefix: str = "") -> list[tuple[str, str, dict[str, Any]]]:
    """(action, actor name or "system", data) of every role event, oldest first."""
    rows = AuditEvent.objects.filter(action__regex=r"^(user|token|group)\.").order_by("id")
    if prefix:
        rows = rows.filter(action__startswith=prefix)
    return [(e.action, e.actor_name or "system", e.data) for e in rows]


def _actions() -> list[str]:
    return [action for action, _, _ in _events()]


@pytest.fixture
def approvers(settings: Any) -> Group:
    return Group.objects.get_or_create(name=settings.EPHEMERA_APPROVER_GROUP)[0]


@pytest.fixture
def frank(db: Any) -> User:
    """A user made in the test itself, so every change to him is the test's."""
    user = User.objects.create_user("frank", "frank@example.com", "frank-demo-pass")
    AuditEvent.objects.all().delete()  # nothing before this point is under test (the tail only)
    return user


# --- through the admin ------------------------------------------------------------------------


def _admin_client(admin_user: User) -> Client:
    client = Client(REMOTE_ADDR="198.51.100.9", HTTP_USER_AGENT="admin-browser")
    client.force_login(admin_user)
    return client


def _change_user(client: Client, user: User, **changes: Any) -> None:
    """POST the admin's user change form as the browser does (unchecked boxes are absent)."""
    user.refresh_from_db()
    joined = timezone.localtime(user.date_joined)
    form: dict[str, Any] = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "groups": [g.pk for g in user.groups.all()],
        "user_permissions": [p.pk for p in user.user_permissions.all()],
        "date_joined_0": joined.strftime("%Y-%m-%d"),
        "date_joined_1": joined.strftime("%H:%M:%S"),
        "last_login_0": "",
        "last_login_1": "",
        "_save": "Save",
    }
    form.update(changes)
    data = {k: ("on" if v is True else v) for k, v in form.items() if v is not False}
    resp = client.post(f"/admin/auth/user/{user.pk}/change/", data)
    assert resp.status_code == 302, resp.content.decode()[:3000]


def test_adding_a_user_to_approvers_in_the_admin_is_audited_with_the_admin_as_actor(
    admin_user: User, frank: User, approvers: Group
) -> None:
    _change_user(_admin_client(admin_user), frank, groups=[approvers.pk])
    assert frank.groups.filter(pk=approvers.pk).exists()
    event = AuditEvent.objects.get(action="user.group_added")
    assert event.actor == admin_user and event.actor_name == "admin"
    assert event.data == {"user": "frank", "user_id": frank.pk, "group": "approvers", "group_id": approvers.pk}
    assert event.source_ip == "198.51.100.9" and event.user_agent == "admin-browser"
    assert _actions() == ["user.group_added"]  # saving the rest of the form unchanged is no event
    assert verify_chain() == AuditEvent.objects.count()


def test_removing_a_group_and_flipping_flags_in_the_admin_is_audited(admin_user: User, frank: User, approvers: Group) -> None:
    frank.groups.add(approvers)
    AuditEvent.objects.all().delete()
    client = _admin_client(admin_user)
    _change_user(client, frank, groups=[], is_staff=True, is_superuser=True)
    assert sorted(_actions()) == ["user.group_removed", "user.staff_granted", "user.superuser_granted"]
    assert {actor for _, actor, _ in _events()} == {"admin"}
    AuditEvent.objects.all().delete()
    _change_user(client, frank, is_staff=False, is_superuser=False, is_active=False)
    assert sorted(_actions()) == ["user.deactivated", "user.staff_revoked", "user.superuser_revoked"]
    AuditEvent.objects.all().delete()
    _change_user(client, frank, is_active=True)
    assert _events() == [("user.reactivated", "admin", {"user": "frank", "user_id": frank.pk})]


def test_a_direct_permission_given_in_the_admin_is_audited(admin_user: User, frank: User) -> None:
    perm = Permission.objects.get(codename="change_user", content_type__app_label="auth")
    _change_user(_admin_client(admin_user), frank, user_permissions=[perm.pk])
    assert _events() == [
        (
            "user.permission_added",
            "admin",
            {"user": "frank", "user_id": frank.pk, "permission": "auth.change_user", "permission_id": perm.pk},
        )
    ]


def test_revoking_a_token_in_the_admin_is_audited(admin_user: User, frank: User) -> None:
    create_token(frank, name="laptop")
    token = ApiToken.objects.get(user=frank)
    AuditEvent.objects.all().delete()
    now = timezone.localtime()
    resp = _admin_client(admin_user).post(
        f"/admin/portal/apitoken/{token.pk}/change/",
        {"name": "laptop", "revoked_at_0": now.strftime("%Y-%m-%d"), "revoked_at_1": now.strftime("%H:%M:%S"), "_save": "Save"},
    )
    assert resp.status_code == 302, resp.content.decode()[:3000]
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert _events() == [
        (
            "token.revoked",
            "admin",
            {"user": "frank", "user_id": frank.pk, "token_id": token.pk, "token_prefix": token.prefix, "token_name": "laptop"},
        )
    ]


def test_the_actor_does_not_leak_into_later_changes_outside_a_request(admin_user: User, frank: User, approvers: Group) -> None:
    _change_user(_admin_client(admin_user), frank, is_staff=True)
    frank.groups.add(approvers)  # after the request: the system, not the last admin
    assert [(a, who) for a, who, _ in _events()] == [("user.staff_granted", "admin"), ("user.group_added", "system")]


# --- through the ORM and manage.py: the system ------------------------------------------------


def test_membership_changes_from_the_user_side(frank: User, approvers: Group) -> None:
    auditors = Group.objects.create(name="auditors")
    frank.groups.add(approvers, auditors)
    frank.groups.add(approvers)  # already a member: nothing happened
    frank.groups.remove(auditors)
    frank.groups.remove(auditors)  # not a member any more: nothing happened
    frank.groups.set([auditors])
    frank.groups.clear()
    frank.groups.clear()
    got = [(a, who, d["group"]) for a, who, d in _events()]
    assert got == [
        ("user.group_added", "system", "approvers"),
        ("user.group_added", "system", "auditors"),
        ("user.group_removed", "system", "auditors"),
        ("user.group_removed", "system", "approvers"),
        ("user.group_added", "system", "auditors"),
        ("user.group_removed", "system", "auditors"),
    ]
    assert all(d["user"] == "frank" and d["user_id"] == frank.pk for _, _, d in _events())
    assert verify_chain() == AuditEvent.objects.count()


def test_membership_changes_from_the_group_side(frank: User, approvers: Group) -> None:
    grace = User.objects.create_user("grace")
    AuditEvent.objects.all().delete()
    approvers.user_set.add(frank, grace)
    approvers.user_set.remove(grace)
    approvers.user_set.clear()
    got = [(a, d["user"], d["group"]) for a, _, d in _events()]
    assert got == [
        ("user.group_added", "frank", "approvers"),
        ("user.group_added", "grace", "approvers"),
        ("user.group_removed", "grace", "approvers"),
        ("user.group_removed", "frank", "approvers"),
    ]


def test_a_deleted_group_removes_its_members_and_a_renamed_one_is_audited(frank: User, approvers: Group) -> None:
    helpers = Group.objects.create(name="helpers")
    frank.groups.add(helpers)
    AuditEvent.objects.all().delete()
    helpers.name = "approvers-2"
    helpers.save()
    assert _events() == [
        ("group.renamed", "system", {"group_id": helpers.pk, "old": "helpers", "new": "approvers-2", "members": ["frank"]})
    ]
    AuditEvent.objects.all().delete()
    helpers.delete()
    assert [(a, d["user"], d["group"], d.get("group_deleted")) for a, _, d in _events()] == [
        ("user.group_removed", "frank", "approvers-2", True)
    ]


def test_flag_changes_through_the_orm(frank: User) -> None:
    frank.is_superuser = True
    frank.save()
    frank.is_staff = True
    frank.save(update_fields=["is_staff"])
    frank.save()  # nothing changed
    frank.last_login = timezone.now()
    frank.save(update_fields=["last_login"])  # what every sign-in does: no event
    frank.is_active = False
    frank.is_superuser = False
    frank.save()
    frank.is_active = True
    frank.save()
    assert [(a, who) for a, who, _ in _events()] == [
        ("user.superuser_granted", "system"),
        ("user.staff_granted", "system"),
        ("user.superuser_revoked", "system"),
        ("user.deactivated", "system"),
        ("user.reactivated", "system"),
    ]


def test_createsuperuser_is_a_grant_by_the_system(db: Any) -> None:
    call_command("createsuperuser", "--noinput", "--username", "root", "--email", "root@example.com", verbosity=0)
    root = User.objects.get(username="root")
    assert _events() == [
        ("user.superuser_granted", "system", {"user": "root", "user_id": root.pk, "created": True}),
        ("user.staff_granted", "system", {"user": "root", "user_id": root.pk, "created": True}),
    ]
    User.objects.create_user("plain", is_active=False)  # a plain (even inactive) new user is no role change
    assert len(_events()) == 2


def test_token_issuance_and_revocation(frank: User, capsys: Any) -> None:
    call_command("create_api_token", "frank", "--name", "ci")
    raw = capsys.readouterr().out.strip()
    token = ApiToken.objects.get(user=frank)
    data = {"user": "frank", "user_id": frank.pk, "token_id": token.pk, "token_prefix": raw[:12], "token_name": "ci"}
    assert _events() == [("token.issued", "system", data)]
    revoke_token(token.pk)
    revoke_token(token.pk)  # already revoked: nothing happened
    assert _events() == [("token.issued", "system", data), ("token.revoked", "system", data)]
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=None)
    token.refresh_from_db()
    AuditEvent.objects.all().delete()
    token.delete()
    assert _actions() == ["token.deleted"]
    assert raw not in str(list(AuditEvent.objects.values_list("data", flat=True)))  # never the token itself
