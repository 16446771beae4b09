"""Role changes are audit events: group membership, direct permissions, the superuser and
staff flags, (de)activation, and API token issuance and revocation.

Django's admin, `manage.py` commands and the ORM change these without going through any
service of ours, so model signals are the one place that sees them all, whichever side of a
many-to-many is used (`user.groups.add(g)` and `g.user_set.add(u)`, `clear()` included).
The actor is the user of the HTTP request that caused the change (portal.actor_context),
otherwise the system. Each change also makes the user's open websockets re-check their
access (portal.access_events). Inside the admin the event is written in the change's own transaction
(the admin makes one); a bare ORM change in autocommit gets its event right after it.
`QuerySet.update()` and bulk writes send no signals and are not seen: nothing of ours
changes roles that way (tokens.revoke_token saves the row for exactly this reason).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import models, transaction
from django.db.models.signals import m2m_changed, post_save, pre_delete, pre_save

from portal.access_events import access_changed
from portal.actor_context import current_actor
from portal.audit import record_event
from portal.models import ApiToken

# flag -> (event when it turns on, event when it turns off)
_FLAG_EVENTS: dict[str, tuple[str, str]] = {
    "is_superuser": ("user.superuser_granted", "user.superuser_revoked"),
    "is_staff": ("user.staff_granted", "user.staff_revoked"),
    "is_active": ("user.reactivated", "user.deactivated"),
}
_BEFORE = "_role_audit_before"  # instance attribute: the row as it was, read in pre_save
_PENDING_REMOVAL = "_role_audit_pending"  # instance attribute: links a remove/clear is about to delete


def _record(action: str, data: dict[str, Any]) -> None:
    actor, origin = current_actor()
    with transaction.atomic():
        record_event(action=action, actor=actor, origin=origin, data=data)
    # Every role change is an access change: the user's open websockets re-check (on commit).
    access_changed(data.get("user_id"))


def _user_data(user: Any) -> dict[str, Any]:
    return {"user": user.get_username(), "user_id": user.pk}


# --- user flags ----------------------------------------------------------------------------


def _user_pre_save(sender: type[models.Model], instance: Any, update_fields: Iterable[str] | None = None, **kwargs: Any) -> None:
    before: dict[str, Any] | None
    if instance._state.adding:
        before = None
    elif update_fields is not None and not set(update_fields) & {*_FLAG_EVENTS, "password"}:
        before = {}  # e.g. last_login on every sign-in: no flag can change, spare the query
    else:
        before = sender._default_manager.filter(pk=instance.pk).values(*_FLAG_EVENTS, "password").first()
    setattr(instance, _BEFORE, before)


def _user_post_save(sender: type[models.Model], instance: Any, created: bool, **kwargs: Any) -> None:
    before = instance.__dict__.pop(_BEFORE, None)
    data = _user_data(instance)
    if created or before is None:
        # A new account made a superuser or staff is a grant; created inactive is no "deactivation".
        before = {"is_superuser": False, "is_staff": False, "is_active": instance.is_active}
        data["created"] = True
    for flag, (turned_on, turned_off) in _FLAG_EVENTS.items():
        old, new = bool(before.get(flag, getattr(instance, flag))), bool(getattr(instance, flag))
        if old != new:
            _record(turned_on if new else turned_off, data)
    if not data.get("created") and before.get("password", instance.password) != instance.password:
        # Not a role change, but Django's login sessions die with the old password: so do the sockets.
        access_changed(instance.pk)


# --- memberships and direct permissions (many-to-many, both directions) --------------------


@dataclass(frozen=True)
class _Link:
    """One user <-> thing many-to-many: its through model and how its events read."""

    field: str  # the through model's column for the other side ("group", "permission")
    model: type[models.Model]
    added: str
    removed: str

    def label(self, obj: Any) -> str:
        if isinstance(obj, Permission):
            return f"{obj.content_type.app_label}.{obj.codename}"
        return str(obj.name)


def _links() -> dict[type[models.Model], _Link]:
    user_model: Any = get_user_model()
    return {
        user_model.groups.through: _Link("group", Group, "user.group_added", "user.group_removed"),
        user_model.user_permissions.through: _Link("permission", Permission, "user.permission_added", "user.permission_removed"),
    }


def _pairs_linked(
    through: type[models.Model], link: _Link, instance: Any, reverse: bool, pk_set: set[Any] | None
) -> list[tuple[Any, Any]]:
    """(user id, other id) rows that exist now, among those a remove/clear names."""
    mine, theirs = (f"{link.field}_id", "user_id") if reverse else ("user_id", f"{link.field}_id")
    rows = through._default_manager.filter(**{mine: instance.pk})
    if pk_set is not None:
        rows = rows.filter(**{f"{theirs}__in": pk_set})
    return list(rows.values_list("user_id", f"{link.field}_id"))


def _m2m_changed(
    sender: type[models.Model], instance: Any, action: str, reverse: bool, pk_set: set[Any] | None, **kwargs: Any
) -> None:
    link = _links().get(sender)
    if link is None:
        return
    if action in ("pre_remove", "pre_clear"):
        # remove() names ids whether or not they are linked, clear() names none: ask the table,
        # before the rows go, which links really end.
        pending = instance.__dict__.setdefault(_PENDING_REMOVAL, {})
        pending[sender] = _pairs_linked(sender, link, instance, reverse, pk_set)
        return
    if action == "post_add":
        # Django passes only the ids it actually inserted: re-adding a member is no event.
        pairs = [(pk, instance.pk) if reverse else (instance.pk, pk) for pk in pk_set or ()]
        event = link.added
    elif action in ("post_remove", "post_clear"):
        pairs = instance.__dict__.get(_PENDING_REMOVAL, {}).pop(sender, [])
        event = link.removed
    else:
        return
    _record_links(link, event, pairs)


def _record_links(link: _Link, event: str, pairs: list[tuple[Any, Any]], **extra: Any) -> None:
    if not pairs:
        return
    users = get_user_model()._default_manager.in_bulk({u for u, _ in pairs})
    others_qs = link.model._default_manager.all()
    if link.model is Permission:
        others_qs = others_qs.select_related("content_type")
    others = others_qs.in_bulk({o for _, o in pairs})
    for user_id, other_id in sorted(pairs):
        data = {**_user_data(users[user_id]), link.field: link.label(others[other_id]), f"{link.field}_id": other_id}
        _record(event, {**data, **extra})


# --- groups renamed or deleted (roles are group names) -------------------------------------


def _group_pre_save(sender: type[models.Model], instance: Group, **kwargs: Any) -> None:
    old = None if instance._state.adding else Group.objects.filter(pk=instance.pk).values_list("name", flat=True).first()
    setattr(instance, _BEFORE, old)


def _group_post_save(sender: type[models.Model], instance: Group, created: bool, **kwargs: Any) -> None:
    old = instance.__dict__.pop(_BEFORE, None)
    if created or old is None or old == instance.name:
        return
    # Renaming a group to (or from) a role's name hands that role to (or takes it from) everyone in it.
    members = sorted(instance.user_set.values_list("username", "pk"))
    _record("group.renamed", {"group_id": instance.pk, "old": old, "new": instance.name, "members": [m for m, _ in members]})
    for _, user_id in members:
        access_changed(user_id)


def _group_pre_delete(sender: type[models.Model], instance: Group, **kwargs: Any) -> None:
    # The cascade deletes the memberships without m2m signals: each member loses the group here.
    through = get_user_model().groups.through
    pairs = list(through._default_manager.filter(group_id=instance.pk).values_list("user_id", "group_id"))
    _record_links(_links()[through], "user.group_removed", pairs, group_deleted=True)


# --- API tokens ----------------------------------------------------------------------------


def _token_data(token: ApiToken) -> dict[str, Any]:
    return {**_user_data(token.user), "token_id": token.pk, "token_prefix": token.prefix, "token_name": token.name}


def _token_pre_save(sender: type[models.Model], instance: ApiToken, **kwargs: Any) -> None:
    before = None if instance._state.adding else ApiToken.objects.filter(pk=instance.pk).values("revoked_at").first()
    setattr(instance, _BEFORE, before)


def _token_post_save(sender: type[models.Model], instance: ApiToken, created: bool, **kwargs: Any) -> None:
    before = instance.__dict__.pop(_BEFORE, None)
    if created or before is None:
        _record("token.issued", _token_data(instance))
        if instance.revoked_at is None:
            return
        before = {"revoked_at": None}
    was_revoked, revoked = before["revoked_at"] is not None, instance.revoked_at is not None
    if revoked and not was_revoked:
        _record("token.revoked", _token_data(instance))
    elif was_revoked and not revoked:  # an admin cleared revoked_at: the token works again
        _record("token.restored", _token_data(instance))


def _token_pre_delete(sender: type[models.Model], instance: ApiToken, **kwargs: Any) -> None:
    _record("token.deleted", _token_data(instance))


def connect() -> None:
    """Wire the handlers (PortalConfig.ready). dispatch_uid: connecting twice changes nothing."""
    user_model = get_user_model()
    pre_save.connect(_user_pre_save, sender=user_model, dispatch_uid="role_audit.user_pre_save")
    post_save.connect(_user_post_save, sender=user_model, dispatch_uid="role_audit.user_post_save")
    for through in _links():
        m2m_changed.connect(_m2m_changed, sender=through, dispatch_uid=f"role_audit.m2m.{through._meta.label}")
    pre_save.connect(_group_pre_save, sender=Group, dispatch_uid="role_audit.group_pre_save")
    post_save.connect(_group_post_save, sender=Group, dispatch_uid="role_audit.group_post_save")
    pre_delete.connect(_group_pre_delete, sender=Group, dispatch_uid="role_audit.group_pre_delete")
    pre_save.connect(_token_pre_save, sender=ApiToken, dispatch_uid="role_audit.token_pre_save")
    post_save.connect(_token_post_save, sender=ApiToken, dispatch_uid="role_audit.token_post_save")
    pre_delete.connect(_token_pre_delete, sender=ApiToken, dispatch_uid="role_audit.token_pre_delete")
