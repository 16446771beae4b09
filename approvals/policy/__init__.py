"""Approval policy as code: one module every path asks (views, API, websockets, services).

The rules come from EPHEMERA_POLICY_FILE (or the built-in policy), parsed once at start-up by
approvals.policy.schema into settings.EPHEMERA_POLICY. A request is matched on its exact debug
spec; the rule that decides it is copied onto the request (`policy` snapshot) when it is
created, so a pending request keeps the rule it was asked under even if the file changes.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from approvals.policy.schema import Policy, PolicyError, RequestSpec, Rule

__all__ = ["Policy", "PolicyError", "RequestSpec", "Rule", "current", "snapshot", "spec_for"]


def current() -> Policy:
    policy: Policy = settings.EPHEMERA_POLICY
    return policy


def spec_for(*, kind: str, namespace: str, profile: str, image: str, cluster: str | None = None) -> RequestSpec:
    return RequestSpec(cluster=cluster or settings.EPHEMERA_CLUSTER_NAME, namespace=namespace if kind in ("pod", "copy") else "",
                       kind=kind, profile=profile, image=image)


def snapshot(rule: Rule, policy: Policy, *, kind: str = "pod", profile: str = "general") -> dict[str, Any]:
    """What the request keeps of its rule: everything that decides it later."""
    return {
        "files": rule.files_for(kind=kind, profile=profile).as_dict(),
        "rule": rule.name,
        "policy_sha256": policy.sha256,
        "approvals_required": rule.approvals,
        "approver_groups": list(rule.approvers),
        "max_duration_minutes": rule.max_duration_minutes,
        "ticket_required": rule.ticket.required,
        "clock": rule.clock,
        "approval_reauth_minutes": rule.approval_reauth_minutes,
        "approval_webauthn": rule.approval_webauthn,
        "summary": rule.summary(),
    }
