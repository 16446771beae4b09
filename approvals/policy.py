"""Approval policy: how many approvals a request needs and which requests approve themselves."""

from __future__ import annotations

from django.conf import settings


def approvals_required() -> int:
    return settings.EPHEMERA_APPROVALS_REQUIRED


def auto_approves(*, namespace: str, profile: str, kind: str = "pod") -> bool:
    """Only low-privilege profiles in namespaces an admin listed are approved without a human;
    a node is never approved without one (its debugger pod runs on the host)."""
    if kind != "pod" or not namespace:
        return False
    return namespace in settings.EPHEMERA_AUTO_APPROVE_NAMESPACES and profile in settings.EPHEMERA_AUTO_APPROVE_PROFILES


def describe_auto_approval(*, namespace: str, profile: str) -> dict[str, str]:
    """What the audit trail records as the reason a request approved itself."""
    return {"by": "policy", "rule": f"namespace {namespace} is auto-approved for profile {profile}"}
