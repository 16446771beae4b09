"""Risk cues for approvers (issue 11): the queue and the request page show the kind and profile
as a colour-coded badge, the rule with "1 of 2 approvals", who decides it, the ticket, and
whether the requester already has a session open on the same pod or node; and the queue offers
each approver only what they may decide.

Requests and sessions are written with the ORM: these are the pages' reads, not the services.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from approvals.choices import Profile, RequestKind, RequestStatus
from approvals.models import DebugRequest, Decision
from portal.templatetags import ephemera_ui
from portal.templatetags.ephemera_ui import risk_badge, risk_level
from sessions.choices import SessionStatus
from sessions.models import DebugSession

pytestmark = pytest.mark.django_db

POD = "distroless-nginx-7c9d8-abcde"


def _snapshot(rule: str, *, approvals: int = 1, groups: tuple[str, ...] = ("approvers",), ticket: bool = False) -> dict[str, Any]:
    """A request's `policy` as approvals.policy.snapshot writes it."""
    return {"rule": rule, "policy_sha256": "0" * 64, "approvals_required": approvals, "approver_groups": list(groups),
            "max_duration_minutes": 30, "ticket_required": ticket, "clock": "approval", "summary": f"rule {rule}"}


def _request(requester: User, *, rule: str = "default", approvals: int = 1, groups: tuple[str, ...] = ("approvers",),
             **fields: Any) -> DebugRequest:
    now = timezone.now()
    values: dict[str, Any] = {
        "requester": requester, "created_at": now, "namespace": "default", "pod": POD, "container": "distroless-nginx-ctr",
        "image": "busybox", "profile": "general", "reason": "checking nginx workers", "duration_minutes": 30,
        "expires_at": now + timedelta(minutes=60), "approvals_required": approvals,
        "policy": _snapshot(rule, approvals=approvals, groups=groups, ticket=bool(fields.get("ticket"))),
    }
    values.update(fields)
    return DebugRequest.objects.create(**values)


def _open_session(requester: User, *, status: str = SessionStatus.RUNNING, **target: Any) -> DebugRequest:
    """An approved request of `requester` with a session in `status` on `target`."""
    req = _request(requester, status=RequestStatus.APPROVED, decided_at=timezone.now(), **target)
    DebugSession.objects.create(request=req, status=status, created_at=timezone.now(), namespace=req.namespace or "default",
                                pod=req.pod or f"node-debugger-{req.node}", container_name="debugger-abcde")
    return req


def _approve(req: DebugRequest, approver: User) -> None:
    Decision.objects.create(request=req, approver=approver, verdict="approve", comment="", created_at=timezone.now())


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _queue_item(user: User, req: DebugRequest) -> str:
    """The queue's entry for `req` as `user` sees it (the fragment approvals.ts fetches)."""
    body = _client(user).get(reverse("approvals_pending")).content.decode()
    match = re.search(rf'<li class="queue-item" data-request-id="{req.pk}".*?</li>', body, re.S)
    assert match, f"request {req.pk} is not in {user}'s queue"
    return match.group(0)


def _detail(user: User, req: DebugRequest) -> str:
    resp = _client(user).get(reverse("request_detail", args=[req.pk]))
    assert resp.status_code == 200
    return resp.content.decode()


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# --- the badge ------------------------------------------------------------------------------


def test_every_kind_and_profile_has_its_own_risk_level() -> None:
    # A profile or kind added later must be placed on purpose, not fall to the unknown default.
    assert set(Profile.values) <= set(ephemera_ui._PROFILE_RISK)
    assert set(RequestKind.values) <= set(ephemera_ui._KIND_RISK)


@pytest.mark.parametrize(
    ("kind", "profile", "level"),
    [
        ("node", "restricted", "high"),  # root on the node, whatever the profile
        ("node", "general", "high"),
        ("pod", "sysadmin", "high"),
        ("pod", "netadmin", "elevated"),
        ("pod", "general", "standard"),
        ("pod", "baseline", "low"),
        ("pod", "restricted", "low"),
        ("pod", "legacy", "high"),  # unknown: never shown as harmless
        ("cluster", "restricted", "high"),
    ],
)
def test_the_risk_level_is_the_higher_of_kind_and_profile(kind: str, profile: str, level: str) -> None:
    assert risk_level(kind, profile)[0] == level


def test_the_badge_says_its_level_in_words_and_escapes_what_it_shows() -> None:
    html = str(risk_badge(DebugRequest(kind="pod", profile='<b x="1">')))
    assert 'class="risk risk-high"' in html and "high risk" in html
    assert "<b " not in html and "&lt;b x=&quot;1&quot;&gt;" in html


@pytest.mark.parametrize(
    ("fields", "css", "words"),
    [
        ({"kind": "node", "node": "debian-11", "namespace": "", "pod": "", "container": "", "profile": "general"},
         "risk-high", "node · general"),
        ({"profile": "sysadmin"}, "risk-high", "pod · sysadmin"),
        ({"profile": "netadmin"}, "risk-elevated", "pod · netadmin"),
        ({"profile": "general"}, "risk-standard", "pod · general"),
        ({"profile": "restricted"}, "risk-low", "pod · restricted"),
    ],
)
def test_queue_and_request_page_show_the_risk_badge(alice: User, bob: User, fields: dict[str, Any], css: str,
                                                    words: str) -> None:
    req = _request(alice, **fields)
    for html in (_queue_item(bob, req), _detail(bob, req)):
        badge = re.search(r'<span class="risk (risk-\w+)"[^>]*><span class="risk-level">[^<]*</span>([^<]*)</span>', html)
        assert badge, html
        assert badge.group(1) == css and badge.group(2).strip() == words


# --- the rule and its approvals --------------------------------------------------------------


def test_the_queue_counts_approvals_against_the_rule(alice: User, bob: User, carol: User, settings: Any) -> None:
    req = _request(alice, rule="sysadmin", approvals=2, profile="sysadmin")
    assert "0 of 2 approvals" in _text(_queue_item(bob, req))
    _approve(req, carol)
    for html in (_queue_item(bob, req), _detail(bob, req)):
        text = _text(html)
        assert "sysadmin" in text and "1 of 2 approvals" in text
        assert re.search(r"Decided by\s*approvers", text)


def test_the_queue_shows_the_ticket_and_the_groups_of_the_rule(alice: User, settings: Any) -> None:
    oncall = User.objects.create_user("olga", password="x")
    oncall.groups.add(Group.objects.get_or_create(name="payments-oncall")[0])
    req = _request(alice, rule="payments", groups=("payments-oncall",), namespace="payments", ticket="INC-42")
    settings.EPHEMERA_POLICY = _policy_naming("payments-oncall", settings)
    text = _text(_queue_item(oncall, req))
    assert "payments" in text and "0 of 1 approval" in text and "INC-42" in text
    assert re.search(r"Decided by\s*payments-oncall", text)


def test_a_request_without_a_ticket_says_so(alice: User, bob: User) -> None:
    assert re.search(r"Ticket\s*none", _text(_queue_item(bob, _request(alice))))


def test_an_auto_approved_request_says_so_on_its_page(alice: User, bob: User) -> None:
    req = _request(alice, rule="self-service", approvals=0, status=RequestStatus.APPROVED, auto_approved=True)
    assert "approved automatically by policy" in _text(_detail(bob, req))


# --- an open session on the same target -------------------------------------------------------


def test_a_running_session_on_the_same_pod_is_flagged(alice: User, bob: User) -> None:
    running = _open_session(alice, container="other-ctr", profile="general")  # same pod, another container
    req = _request(alice, profile="sysadmin")
    for html in (_queue_item(bob, req), _detail(bob, req)):
        assert "alice already has a debug session running on this pod" in _text(html)
        assert reverse("session_detail", args=[running.session.pk]) in html


def test_a_session_still_starting_is_flagged_as_starting(alice: User, bob: User) -> None:
    _open_session(alice, status=SessionStatus.PROVISIONING)
    assert "already has a debug session starting on this pod" in _text(_queue_item(bob, _request(alice)))


def test_a_node_session_is_flagged_on_a_request_for_the_same_node(alice: User, bob: User) -> None:
    node = {"kind": "node", "node": "debian-11", "namespace": "", "pod": "", "container": ""}
    _open_session(alice, **node)
    assert "already has a debug session running on this node" in _text(_queue_item(bob, _request(alice, **node)))


@pytest.mark.parametrize(
    "other",
    [
        {"status": SessionStatus.ENDED},
        {"status": SessionStatus.FAILED},
        {"pod": "distroless-nginx-7c9d8-zzzzz"},  # another pod
        {"namespace": "payments"},  # the same pod name elsewhere
        {"cluster": "staging"},
        {"kind": "node", "node": "debian-11", "namespace": "", "pod": "", "container": ""},
    ],
)
def test_no_flag_for_sessions_elsewhere_or_over(alice: User, bob: User, other: dict[str, Any]) -> None:
    _open_session(alice, **other)
    req = _request(alice)
    assert "already has a debug session" not in _queue_item(bob, req)
    assert "already has a debug session" not in _detail(bob, req)


def test_no_flag_for_someone_elses_session_on_the_pod(alice: User, bob: User, eve: User) -> None:
    _open_session(eve)
    assert "already has a debug session" not in _queue_item(bob, _request(alice))


def test_a_request_is_not_flagged_for_its_own_session(alice: User, bob: User) -> None:
    own = _open_session(alice)
    assert "already has a debug session" not in _detail(bob, own)


def test_the_queue_reads_open_sessions_in_one_query_for_any_number_of_requests(alice: User, bob: User,
                                                                               eve: User) -> None:
    def queries() -> int:
        client = _client(bob)
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(reverse("approvals_pending")).status_code == 200
        return len(ctx.captured_queries)

    _open_session(alice)
    _request(alice)
    _request(eve)
    few = queries()
    for i in range(12):
        who = alice if i % 2 else eve
        _open_session(who, pod=f"web-{i}")
        _request(who, pod=f"web-{i}")
    body = _client(bob).get(reverse("approvals_pending")).content.decode()
    assert body.count("already has a debug session running") == 13
    assert queries() == few


# --- the queue offers each approver only what they may decide -----------------------------------


def _policy_naming(group: str, settings: Any) -> Any:
    """A policy in force whose rules name `group`, so its members are approvers (see the queue)."""
    from approvals.policy.schema import parse

    return parse(f"rules: [{{name: payments, match: {{namespace: [payments]}}, approvers: [{group}]}}, {{name: default}}]",
                 source="test-policy.yaml", default_approvers=settings.EPHEMERA_APPROVER_GROUP)


def test_an_approver_outside_the_rules_groups_gets_no_decision_buttons(alice: User, bob: User, carol: User,
                                                                       settings: Any) -> None:
    settings.EPHEMERA_POLICY = _policy_naming("payments-oncall", settings)
    oncall = User.objects.get(pk=carol.pk)
    oncall.groups.add(Group.objects.get_or_create(name="payments-oncall")[0])
    req = _request(alice, rule="payments", groups=("payments-oncall",), namespace="payments", ticket="INC-1")
    decide = reverse("request_decide", args=[req.pk])

    outside = _queue_item(bob, req)  # bob: in `approvers`, not in payments-oncall
    assert decide not in outside and 'name="verdict"' not in outside
    assert "Only members of payments-oncall decide this request (rule payments)." in _text(outside)
    assert decide not in _detail(bob, req)

    inside = _queue_item(User.objects.get(pk=oncall.pk), req)
    assert decide in inside and 'value="approve"' in inside and 'value="deny"' in inside
    assert "Only members of" not in inside


def test_an_approver_who_already_voted_is_told_so(alice: User, bob: User, carol: User) -> None:
    req = _request(alice, approvals=2)
    _approve(req, carol)
    html = _queue_item(carol, req)
    assert 'name="verdict"' not in html and "You have already decided this request." in html
    assert 'name="verdict"' in _queue_item(bob, req)

