"""Who may open which page of debug requests: every page and endpoint × every persona.

Anonymous users go to the login page; requests a user may not see are 404; actions a user
may not take are 403. Requests are made with the ORM here (the form has its own tests).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from approvals.choices import RequestStatus
from approvals.models import DebugRequest, Decision
from portal.models import AuditEvent

pytestmark = pytest.mark.django_db

PERSONAS = ["alice", "bob", "carol", "dave", "eve", "admin"]


@pytest.fixture
def users(settings) -> dict[str, User]:
    approvers, _ = Group.objects.get_or_create(name=settings.EPHEMERA_APPROVER_GROUP)
    auditors, _ = Group.objects.get_or_create(name=settings.EPHEMERA_AUDITOR_GROUP)
    made = {name: User.objects.create_user(name, f"{name}@example.test", f"{name}-pass") for name in PERSONAS}
    made["bob"].groups.add(approvers)
    made["carol"].groups.add(approvers)
    made["dave"].groups.add(auditors)
    made["admin"].is_superuser = True
    made["admin"].save()
    return made


def client_for(users: dict[str, User], who: str) -> Client:
    client = Client()
    if who != "anonymous":
        client.force_login(users[who])
    return client


def make_request(requester: User, **extra: object) -> DebugRequest:
    now = timezone.now()
    fields = {
        "requester": requester,
        "created_at": now,
        "namespace": "default",
        "pod": "distroless-nginx-7c9d8-abcde",
        "container": "distroless-nginx-ctr",
        "image": "busybox",
        "profile": "general",
        "reason": "checking nginx workers",
        "duration_minutes": 30,
        "expires_at": now + timedelta(minutes=60),
    }
    fields.update(extra)
    return DebugRequest.objects.create(**fields)


@pytest.fixture
def alice_request(users: dict[str, User]) -> DebugRequest:
    return make_request(users["alice"])


# --- pages anyone signed in may open ----------------------------------------------------
@pytest.mark.parametrize("who", PERSONAS)
@pytest.mark.parametrize("name", ["home", "request_new"])
def test_signed_in_users_open_home_and_form(users, who, name):
    resp = client_for(users, who).get(reverse(name))
    assert resp.status_code == 200
    assert users[who].username in resp.content.decode()


@pytest.mark.parametrize(
    "url",
    [
        "/",
        "/requests/new",
        "/approvals/",
        "/approvals/pending",
        "/cluster/namespaces",
        "/cluster/namespaces/default/pods",
        "/cluster/namespaces/default/pods/web/containers",
    ],
)
def test_anonymous_is_sent_to_login(url):
    resp = Client().get(url)
    assert resp.status_code == 302
    assert resp["Location"].startswith(reverse("login") + "?next=")


def test_anonymous_is_sent_to_login_for_request_pages(users, alice_request):
    client = Client()
    for resp in (
        client.get(reverse("request_detail", args=[alice_request.pk])),
        client.post(reverse("request_decide", args=[alice_request.pk]), {"verdict": "approve"}),
        client.post(reverse("request_cancel", args=[alice_request.pk])),
    ):
        assert resp.status_code == 302
        assert resp["Location"].startswith(reverse("login"))
    alice_request.refresh_from_db()
    assert alice_request.status == RequestStatus.PENDING


# --- request detail ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("who", "status"), [("alice", 200), ("bob", 200), ("carol", 200), ("dave", 200), ("admin", 200), ("eve", 404)]
)
def test_request_detail_visibility(users, alice_request, who, status):
    resp = client_for(users, who).get(reverse("request_detail", args=[alice_request.pk]))
    assert resp.status_code == status
    if status == 200:
        body = resp.content.decode()
        assert "default/distroless-nginx-7c9d8-abcde:distroless-nginx-ctr" in body
        assert "checking nginx workers" in body


@pytest.mark.parametrize(("who", "shows_buttons"), [("alice", False), ("bob", True), ("dave", False), ("admin", False)])
def test_decision_buttons_only_for_those_who_can_decide(users, alice_request, who, shows_buttons):
    body = client_for(users, who).get(reverse("request_detail", args=[alice_request.pk])).content.decode()
    assert ('value="approve"' in body) is shows_buttons
    assert (reverse("request_decide", args=[alice_request.pk]) in body) is shows_buttons


def test_an_approver_sees_no_buttons_on_their_own_request(users):
    own = make_request(users["bob"])
    body = client_for(users, "bob").get(reverse("request_detail", args=[own.pk])).content.decode()
    assert 'value="approve"' not in body
    queue = client_for(users, "bob").get(reverse("approvals_pending")).content.decode()
    assert str(own.pk) in queue
    assert "your own request" in queue
    assert reverse("request_decide", args=[own.pk]) not in queue


# --- decide -------------------------------------------------------------------------------
@pytest.mark.parametrize(("who", "status"), [("alice", 403), ("dave", 403), ("eve", 404)])
def test_only_approvers_may_decide(users, alice_request, who, status):
    resp = client_for(users, who).post(
        reverse("request_decide", args=[alice_request.pk]), {"verdict": "approve", "comment": "ok"}
    )
    assert resp.status_code == status
    alice_request.refresh_from_db()
    assert alice_request.status == RequestStatus.PENDING
    assert not Decision.objects.exists()


def test_approver_cannot_decide_own_request(users):
    own = make_request(users["bob"])
    resp = client_for(users, "bob").post(reverse("request_decide", args=[own.pk]), {"verdict": "approve"})
    assert resp.status_code == 403
    own.refresh_from_db()
    assert own.status == RequestStatus.PENDING


def test_approver_denies_with_comment(users, alice_request):
    client = client_for(users, "bob")
    resp = client.post(
        reverse("request_decide", args=[alice_request.pk]), {"verdict": "deny", "comment": "use the staging pod"}, follow=True
    )
    assert resp.status_code == 200
    alice_request.refresh_from_db()
    assert alice_request.status == RequestStatus.DENIED
    body = resp.content.decode()
    assert "use the staging pod" in body
    assert "You denied" in body
    assert AuditEvent.objects.filter(request=alice_request).exists()


def test_second_decision_says_already_decided(users, alice_request):
    client_for(users, "bob").post(reverse("request_decide", args=[alice_request.pk]), {"verdict": "deny", "comment": "no"})
    resp = client_for(users, "carol").post(
        reverse("request_decide", args=[alice_request.pk]), {"verdict": "approve", "comment": "yes"}, follow=True
    )
    assert resp.status_code == 200
    assert "already decided" in resp.content.decode()
    alice_request.refresh_from_db()
    assert alice_request.status == RequestStatus.DENIED
    assert list(alice_request.decisions.values_list("approver__username", flat=True)) == ["bob"]


def test_bad_verdict_changes_nothing(users, alice_request):
    resp = client_for(users, "bob").post(reverse("request_decide", args=[alice_request.pk]), {"verdict": "maybe"}, follow=True)
    assert "Choose approve or deny" in resp.content.decode()
    alice_request.refresh_from_db()
    assert alice_request.status == RequestStatus.PENDING


def test_get_on_decide_is_not_allowed(users, alice_request):
    resp = client_for(users, "bob").get(reverse("request_decide", args=[alice_request.pk]))
    assert resp.status_code == 405


def test_posts_need_a_csrf_token(users, alice_request):
    client = Client(enforce_csrf_checks=True)
    client.force_login(users["bob"])
    resp = client.post(reverse("request_decide", args=[alice_request.pk]), {"verdict": "approve"})
    assert resp.status_code == 403
    client.force_login(users["alice"])
    assert client.post(reverse("request_cancel", args=[alice_request.pk])).status_code == 403
    alice_request.refresh_from_db()
    assert alice_request.status == RequestStatus.PENDING


# --- cancel -------------------------------------------------------------------------------
@pytest.mark.parametrize(("who", "status"), [("bob", 403), ("dave", 403), ("eve", 404)])
def test_only_the_requester_may_cancel(users, alice_request, who, status):
    resp = client_for(users, who).post(reverse("request_cancel", args=[alice_request.pk]))
    assert resp.status_code == status
    alice_request.refresh_from_db()
    assert alice_request.status == RequestStatus.PENDING


def test_requester_cancels(users, alice_request):
    resp = client_for(users, "alice").post(reverse("request_cancel", args=[alice_request.pk]), follow=True)
    assert resp.status_code == 200
    alice_request.refresh_from_db()
    assert alice_request.status == RequestStatus.CANCELLED
    assert "cancelled" in resp.content.decode()


# --- approvals queue ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["approvals", "approvals_pending"])
@pytest.mark.parametrize(
    ("who", "status"), [("alice", 403), ("bob", 200), ("carol", 200), ("dave", 403), ("eve", 403), ("admin", 200)]
)
def test_approvals_queue_is_for_approvers(users, alice_request, name, who, status):
    resp = client_for(users, who).get(reverse(name))
    assert resp.status_code == status
    if status == 200:
        assert str(alice_request.pk) in resp.content.decode()


def test_queue_lists_only_pending_requests(users, alice_request):
    done = make_request(users["alice"], status=RequestStatus.DENIED, reason="old one")
    body = client_for(users, "bob").get(reverse("approvals_pending")).content.decode()
    assert str(alice_request.pk) in body
    assert str(done.pk) not in body


def test_home_shows_own_requests_only(users, alice_request):
    make_request(users["eve"], reason="eve's secret investigation", pod="eve-pod")
    body = client_for(users, "alice").get(reverse("home")).content.decode()
    assert "distroless-nginx-7c9d8-abcde" in body
    assert "eve-pod" not in body
    # Approvers see the queue on their home page too.
    bob_home = client_for(users, "bob").get(reverse("home")).content.decode()
    assert "eve-pod" in bob_home
    assert "Waiting for a decision" in bob_home


def test_nav_shows_roles_and_logout_is_a_post_form(users):
    body = client_for(users, "bob").get(reverse("home")).content.decode()
    assert "role-approver" in body
    assert f'<form method="post" action="{reverse("logout")}">' in body
    assert "Approvals" in body
    alice_body = client_for(users, "alice").get(reverse("home")).content.decode()
    assert reverse("approvals") not in alice_body


def test_login_page_shows_demo_users_in_demo_mode(settings):
    settings.DEMO = True
    body = Client().get(reverse("login")).content.decode()
    assert "alice-demo-pass" in body
    assert "bob-demo-pass" in body


def test_login_page_hides_demo_users_outside_demo_mode(settings):
    settings.DEMO = False
    body = Client().get(reverse("login")).content.decode()
    assert "demo-pass" not in body


def test_unknown_request_is_404(users):
    resp = client_for(users, "admin").get(reverse("request_detail", args=["00000000-0000-4000-8000-000000000000"]))
    assert resp.status_code == 404


def test_session_is_linked_from_home_and_detail(users):
    from sessions.models import DebugSession

    req = make_request(users["alice"], status=RequestStatus.APPROVED, decided_at=timezone.now())
    session = DebugSession.objects.create(
        request=req, created_at=timezone.now(), namespace="default", pod=req.pod, container_name="debugger-abcde"
    )
    link = reverse("session_detail", args=[session.pk])
    alice = client_for(users, "alice")
    assert link in alice.get(reverse("home")).content.decode()
    detail = alice.get(reverse("request_detail", args=[req.pk])).content.decode()
    assert link in detail
    assert "Open the session" in detail
    # Others who may see the request see the link too; the session page decides what they get.
    assert link in client_for(users, "dave").get(reverse("request_detail", args=[req.pk])).content.decode()
    assert client_for(users, "eve").get(reverse("request_detail", args=[req.pk])).status_code == 404


def test_cancel_button_only_for_the_requester_while_pending(users, alice_request):
    cancel = reverse("request_cancel", args=[alice_request.pk])
    assert cancel in client_for(users, "alice").get(reverse("request_detail", args=[alice_request.pk])).content.decode()
    assert cancel not in client_for(users, "bob").get(reverse("request_detail", args=[alice_request.pk])).content.decode()


def test_only_requests_that_can_still_change_are_watched(users, alice_request):
    alice = client_for(users, "alice")
    body = alice.get(reverse("request_detail", args=[alice_request.pk])).content.decode()
    assert f'data-api-url="/api/v1/requests/{alice_request.pk}"' in body
    done = make_request(users["alice"], status=RequestStatus.DENIED)
    assert 'id="request-watch"' not in alice.get(reverse("request_detail", args=[done.pk])).content.decode()


def test_the_queue_costs_the_same_queries_for_2_or_20_pending_requests(users):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries_for_queue() -> int:
        client = client_for(users, "bob")
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(reverse("approvals_pending")).status_code == 200
        return len(ctx.captured_queries)

    def with_a_vote(req: DebugRequest) -> None:  # requests with decisions prefetch their approvers too
        Decision.objects.create(request=req, approver=users["carol"], verdict="approve", comment="", created_at=timezone.now())

    with_a_vote(make_request(users["alice"]))
    make_request(users["alice"])
    few = queries_for_queue()
    for i in range(18):
        req = make_request(users["eve"])
        if i % 3 == 0:
            with_a_vote(req)
    assert queries_for_queue() == few
