"""Template helpers for the pages: role badges and permission questions.

They only ask `portal.permissions`, so templates never carry their own copy of a rule.
"""

from __future__ import annotations

from typing import Any

from django import template

from portal import permissions

register = template.Library()


@register.simple_tag
def user_roles(user: Any) -> list[str]:
    """The roles to show as badges next to the user's name."""
    if not getattr(user, "is_authenticated", False):
        return []
    roles = []
    if permissions.is_admin(user):
        roles.append("admin")
    if permissions.is_approver(user):
        roles.append("approver")
    if permissions.is_auditor(user):
        roles.append("auditor")
    return roles


@register.simple_tag
def can_approve(user: Any) -> bool:
    """Whether the approvals queue is for this user (approvers and admins)."""
    return bool(getattr(user, "is_authenticated", False)) and (permissions.is_approver(user) or permissions.is_admin(user))
