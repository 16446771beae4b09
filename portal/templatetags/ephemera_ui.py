"""Template helpers for the pages: role badges, permission questions and risk badges.

They only ask `portal.permissions`, so templates never carry their own copy of a rule.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from django import template
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe

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


# --- Risk cues for approvers -----------------------------------------------------------
# How much a debug request hands out, by what it targets and the profile it asks for: what an
# approver should look at twice. Keyed by the API's plain values ("node", "sysadmin"...) so
# portal/ needs nothing from approvals/; tests/approvals/test_risk_cues.py checks every kind
# and profile has its entry. Anything unknown is shown as high risk: a badge that understates
# a request is worse than one that overstates it.
_RISK_WORDS = {"high": "high risk", "elevated": "elevated risk", "standard": "standard", "low": "low risk"}
_KIND_RISK: dict[str, tuple[str, str]] = {
    "node": ("high", "a node debugger: root on the node, its namespaces and filesystem"),
    "pod": ("low", "an ephemeral container in one pod"),
    # A new pod: runs as the original's service account (its token), on any node unless same_node.
    "copy": ("standard", "a copy of the pod, with its service account, plus a debug container"),
}
_PROFILE_RISK: dict[str, tuple[str, str]] = {
    "sysadmin": ("high", "privileged container"),
    "netadmin": ("elevated", "NET_ADMIN and NET_RAW"),
    "general": ("standard", "SYS_PTRACE on the target's processes"),
    "baseline": ("low", "no extra privileges"),
    "restricted": ("low", "non-root, all capabilities dropped"),
}
_RISK_ORDER = ["low", "standard", "elevated", "high"]
_UNKNOWN = ("high", "unknown to this portal: treat as privileged")


def risk_level(kind: str, profile: str) -> tuple[str, str]:
    """The request's risk level (low, standard, elevated, high) and why, in a few words.

    The higher of its kind's and its profile's: a node request is high whatever its profile.
    """
    kind_level, kind_why = _KIND_RISK.get(kind, _UNKNOWN)
    profile_level, profile_why = _PROFILE_RISK.get(profile, _UNKNOWN)
    level = max(kind_level, profile_level, key=_RISK_ORDER.index)
    return level, f"{kind_why}; {profile_why}"


@register.simple_tag
def risk_badge(req: Any) -> SafeString:
    """The kind and profile of a debug request as a colour-coded badge that also says its level
    in words (colour never carries meaning alone)."""
    kind, profile = str(getattr(req, "kind", "")), str(getattr(req, "profile", ""))
    level, why = risk_level(kind, profile)
    return format_html(
        '<span class="risk risk-{}" data-risk="{}" title="{}"><span class="risk-level">{}</span> {} · {}</span>',
        level, level, why, _RISK_WORDS[level], kind, profile,
    )


@register.filter
def ticks_as_code(text: Any) -> SafeString:
    """Help text written with `backticks` shows those parts as code (escaped; unbalanced: as written)."""
    parts = str(text).split("`")
    if len(parts) % 2 == 0:
        return format_html("{}", str(text))
    return mark_safe("".join(format_html("<code>{}</code>", p) if i % 2 else conditional_escape(p)  # noqa: S308 (each part escaped)
                             for i, p in enumerate(parts)))


@register.simple_tag
def audit_said(event: Any) -> Any:
    """An audit event as a sentence and labelled fields (portal.audit_text)."""
    from portal.audit_text import describe

    return describe(event)


@register.filter
def when(value: Any, precision: str = "minutes") -> SafeString:
    """A moment as the pages show it: `<time>` in UTC (no script), which the browser then says in the
    reader's own time zone, with the zone named and "in 14 min" where it helps (frontend/src/app.ts)."""
    if not value:
        return format_html("{}", "")
    shown = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S" if precision == "seconds" else "%Y-%m-%d %H:%M")
    return format_html('<time datetime="{}">{} UTC</time>', value.isoformat(), shown)
