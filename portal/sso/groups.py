"""The provider's groups become the user's Django groups, at every login.

The provider is the source of truth for an SSO user: groups it no longer lists are removed here,
so a policy's `approvers: [payments-oncall]` names the IdP's group directly. Each change goes
through the ORM's m2m signals, so portal.role_audit audits it and the user's open websockets
re-check their access.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import transaction

_MAX_GROUPS = 500  # a token listing more is refused rather than half-applied


class GroupsClaimError(Exception):
    pass


def names_from_claim(value: Any) -> list[str]:
    """The group names in a groups claim (a list of strings; a single string counts as one)."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise GroupsClaimError(f"the {settings.OIDC_GROUPS_CLAIM!r} claim is not a list of group names")
    names = sorted({v.strip() for v in value if v.strip()})
    if len(names) > _MAX_GROUPS:
        raise GroupsClaimError(f"the {settings.OIDC_GROUPS_CLAIM!r} claim lists {len(names)} groups, more than {_MAX_GROUPS}")
    too_long = [n for n in names if len(n) > 150]
    if too_long:
        raise GroupsClaimError(f"group name longer than 150 characters: {too_long[0][:40]}...")
    return names


def sync(user: Any, names: list[str]) -> None:
    """Make the user's groups exactly `names` (created as needed) and admin iff in OIDC_ADMIN_GROUPS."""
    with transaction.atomic():
        wanted = {Group.objects.get_or_create(name=name)[0] for name in names}
        current = set(user.groups.all())
        if current - wanted:
            user.groups.remove(*(current - wanted))
        if wanted - current:
            user.groups.add(*(wanted - current))
        admin = bool(set(names) & set(settings.OIDC_ADMIN_GROUPS))
        if user.is_superuser != admin or user.is_staff != admin:
            user.is_superuser = user.is_staff = admin
            user.save(update_fields=["is_superuser", "is_staff"])
    user._ephemera_group_names = frozenset(names)  # portal.permissions' per-object cache
