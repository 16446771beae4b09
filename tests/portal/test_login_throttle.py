"""Failed sign-ins are throttled per account and per client address, in the database.

The attack this answers: 40 wrong passwords in 21 s, then the right one, got in.
"""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from portal import login_throttle
from portal.audit import verify_chain
from portal.models import AuditEvent, LoginThrottle
from tests.concurrency import run_at_once

pytestmark = pytest.mark.django_db

LOGIN = "/login/"


def _post(client: Client, username: str, password: str, *, path: str = LOGIN, **extra: Any) -> Any:
    return client.post(path, {"username": username, "password": password}, **extra)


def _signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


@pytest.fixture(autouse=True)
def _limits(settings: Any) -> None:
    settings.EPHEMERA_LOGIN_ACCOUNT_FAILURES = 5
    settings.EPHEMERA_LOGIN_ADDRESS_FAILURES = 20
    settings.EPHEMERA_LOGIN_WINDOW_MINUTES = 15
    settings.EPHEMERA_BEHIND_TLS_PROXY = False


def test_it_refuses_the_right_password_after_a_flood_of_wrong_ones(alice: User) -> None:
    client = Client()
    for i in range(40):
        _post(client, "alice", f"wrong-{i}")
    resp = _post(client, "alice", "alice-demo-pass")
    assert resp.status_code == 429
    assert "Too many failed sign-ins; try again in 15 minutes." in resp.content.decode()
    assert resp["Retry-After"] == "900"
    assert not _signed_in(client)


def test_it_locks_the_account_at_the_fifth_failure(alice: User) -> None:
    client = Client()
    for _ in range(4):
        resp = _post(client, "alice", "wrong")
        assert resp.status_code == 200
        assert "Please enter a correct username and password" in resp.content.decode()
    resp = _post(client, "alice", "wrong")
    assert resp.status_code == 429 and "Too many failed sign-ins" in resp.content.decode()
    assert _post(client, "alice", "alice-demo-pass").status_code == 429
    assert not _signed_in(client)


def test_the_account_lock_holds_from_every_address(alice: User) -> None:
    for _ in range(5):
        _post(Client(REMOTE_ADDR="10.0.0.1"), "alice", "wrong")
    other = Client(REMOTE_ADDR="10.9.9.9")
    # Case does not open a second counter.
    assert _post(other, "ALICE", "alice-demo-pass").status_code == 429
    assert _post(other, "alice", "alice-demo-pass").status_code == 429
    assert not _signed_in(other)


def test_the_address_lock_covers_every_account(alice: User, bob: User) -> None:
    client = Client(REMOTE_ADDR="10.0.0.7")
    for i in range(20):  # 20 accounts, 1 failure each: no account lock, but the address is
        _post(client, f"user{i}", "guess")
    assert _post(client, "bob", "bob-demo-pass").status_code == 429
    assert not _signed_in(client)
    elsewhere = Client(REMOTE_ADDR="10.0.0.8")
    assert _post(elsewhere, "bob", "bob-demo-pass").status_code == 302
    assert _signed_in(elsewhere)


def test_the_lock_ends_after_the_window(alice: User) -> None:
    client = Client()
    for _ in range(5):
        _post(client, "alice", "wrong")
    assert _post(client, "alice", "alice-demo-pass").status_code == 429
    LoginThrottle.objects.update(resets_at=timezone.now() - timedelta(seconds=1))
    assert _post(client, "alice", "alice-demo-pass").status_code == 302
    assert _signed_in(client)


def test_a_success_starts_the_account_over(alice: User) -> None:
    client = Client()
    for _ in range(4):
        _post(client, "alice", "wrong")
    assert _post(client, "alice", "alice-demo-pass").status_code == 302
    client = Client()
    for _ in range(4):
        assert _post(client, "alice", "wrong").status_code == 200
    assert _post(client, "alice", "alice-demo-pass").status_code == 302


def test_a_locked_account_tells_nothing_about_the_password(alice: User, monkeypatch: pytest.MonkeyPatch) -> None:
    client = Client()
    for _ in range(5):
        _post(client, "alice", "wrong")
    checked: list[str] = []
    monkeypatch.setattr("django.contrib.auth.forms.authenticate", lambda *a, **kw: checked.append("x"))
    right = _post(client, "alice", "alice-demo-pass")
    wrong = _post(client, "alice", "nope")
    assert checked == []  # the password is not even looked at
    def strip(body: bytes) -> str:  # what differs on every response anyway: CSRF token, CSP nonce
        return re.sub(r'nonce="[^"]*"', "", "".join(line for line in body.decode().splitlines() if "csrfmiddlewaretoken" not in line))

    assert right.status_code == wrong.status_code == 429
    assert strip(right.content) == strip(wrong.content)


def test_the_admin_login_is_throttled_too(admin_user: User) -> None:
    client = Client()
    for _ in range(5):
        _post(client, "admin", "wrong", path="/admin/login/")
    resp = _post(client, "admin", "admin-demo-pass", path="/admin/login/?next=/admin/")
    assert resp.status_code == 429
    assert client.get("/admin/").status_code == 302  # still not signed in


def test_forwarded_for_is_ignored_unless_behind_the_proxy(alice: User) -> None:
    for i in range(20):
        _post(Client(REMOTE_ADDR="10.0.0.5"), f"u{i}", "x", HTTP_X_FORWARDED_FOR=f"192.0.2.{i}")
    # A made-up X-Forwarded-For does not escape the address lock.
    assert _post(Client(REMOTE_ADDR="10.0.0.5"), "alice", "alice-demo-pass", HTTP_X_FORWARDED_FOR="192.0.2.200").status_code == 429


def test_behind_the_proxy_the_right_most_hop_is_the_address(alice: User, settings: Any) -> None:
    settings.EPHEMERA_BEHIND_TLS_PROXY = True
    proxy = {"REMOTE_ADDR": "10.1.1.1"}
    for i in range(20):
        # The client writes whatever it likes left of the hop the proxy appends.
        _post(Client(**proxy), f"u{i}", "x", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}, 203.0.113.9")
    assert _post(Client(**proxy), "alice", "alice-demo-pass", HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.9").status_code == 429
    # Another client behind the same proxy is not locked out.
    resp = _post(Client(**proxy), "alice", "alice-demo-pass", HTTP_X_FORWARDED_FOR="203.0.113.10")
    assert resp.status_code == 302
    assert LoginThrottle.objects.filter(scope="address", key="203.0.113.9").exists()


def test_an_ipv6_client_is_counted_by_its_64(alice: User) -> None:
    for i in range(20):
        _post(Client(REMOTE_ADDR=f"2001:db8:1:2::{i + 1:x}"), f"u{i}", "x")
    assert _post(Client(REMOTE_ADDR="2001:db8:1:2:ffff::1"), "alice", "alice-demo-pass").status_code == 429
    assert _post(Client(REMOTE_ADDR="2001:db8:1:3::1"), "alice", "alice-demo-pass").status_code == 302


def test_a_flood_writes_three_audit_events(alice: User) -> None:
    client = Client(REMOTE_ADDR="10.0.0.3", HTTP_USER_AGENT="hydra")
    for i in range(40):
        _post(client, "alice", f"wrong-{i}")
    _post(client, "alice", "alice-demo-pass")
    events = list(AuditEvent.objects.order_by("id"))
    assert [e.action for e in events] == ["auth.login_failed", "auth.login_locked", "auth.login_throttled"]
    assert all(e.source_ip == "10.0.0.3" and e.user_agent == "hydra" and e.data["username"] == "alice" for e in events)
    assert events[1].data["locked"][0]["scope"] == "account" and events[1].data["locked"][0]["failures"] == 5
    assert verify_chain() == 3


def test_a_flood_keeps_one_row_per_counter(alice: User) -> None:
    for i in range(30):
        _post(Client(), "alice", f"wrong-{i}")
    assert LoginThrottle.objects.count() == 2  # alice, and 127.0.0.1


def test_expired_counters_are_dropped(alice: User) -> None:
    LoginThrottle.objects.create(scope="account", key="old", failures=3, resets_at=timezone.now() - timedelta(hours=1))
    _post(Client(), "alice", "wrong")
    assert not LoginThrottle.objects.filter(key="old").exists()


def test_attempts_in_flight_count_before_their_password_is_checked(alice: User, rf: Any) -> None:
    request = rf.post(LOGIN, REMOTE_ADDR="10.0.0.4")
    # Five attempts admitted, none finished yet (their hashes still computing): the sixth waits.
    admitted = [login_throttle.begin_login(request=request, username="alice") for _ in range(5)]
    assert all(a.refused_until is None for a in admitted)
    assert login_throttle.begin_login(request=request, username="alice").refused_until is not None


@pytest.mark.django_db(transaction=True)
def test_parallel_guesses_do_not_slip_under_the_limit(alice: User) -> None:
    statuses: list[int] = []
    lock = threading.Lock()

    def guess() -> None:
        resp = _post(Client(), "alice", "wrong")
        with lock:
            statuses.append(resp.status_code)

    assert run_at_once(guess, copies=10) == []
    # Five admitted (four plain failures, the fifth locks), five refused: none beyond the limit.
    assert sorted(statuses) == [200] * 4 + [429] * 6
    assert LoginThrottle.objects.get(scope="account").failures == 5


def _api(token: str, addr: str = "10.0.0.20") -> Any:
    return Client(REMOTE_ADDR=addr).get(reverse("api-requests"), HTTP_AUTHORIZATION=f"Bearer {token}")


def test_a_flood_of_bad_tokens_is_throttled(alice: User) -> None:
    from portal.tokens import create_token

    good = create_token(alice)
    for i in range(20):
        assert _api(f"eph_bad{i}").status_code == 401
    resp = _api("eph_bad-again")
    assert resp.status_code == 429
    assert resp.json()["detail"] == "Too many failed sign-ins; try again in 15 minutes."
    assert resp["Retry-After"] == "900"
    assert _api(good).status_code == 429  # the whole address waits
    assert _api(good, addr="10.0.0.21").status_code == 200
    auth_events = AuditEvent.objects.filter(action__startswith="auth.").order_by("id")
    assert [e.action for e in auth_events] == ["auth.token_failed", "auth.token_locked", "auth.token_throttled"]


def test_malformed_bearer_headers_count_as_bad_tokens(alice: User) -> None:
    client = Client(REMOTE_ADDR="10.0.0.30")
    for _ in range(20):
        assert client.get(reverse("api-requests"), HTTP_AUTHORIZATION="Bearer a b").status_code == 401
    assert client.get(reverse("api-requests"), HTTP_AUTHORIZATION="Bearer x").status_code == 429
