"""A rule with `approval_webauthn: true`, in Chromium with DevTools' virtual authenticator: bob
registers a key on his profile page, approves with a touch; without the key nothing is recorded;
a touch is bound to its request and used once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import _running_portal
from tests.browser.session_helpers import pending_request, people

pytestmark = pytest.mark.browser

POLICY = """
images: [busybox]
rules:
  - name: keyed
    approvals: 1
    approval_webauthn: true
"""


@pytest.fixture(scope="module")
def key_portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    tmp = Path(tmp_path_factory.mktemp("key-portal"))
    policy = tmp / "policy.yaml"
    policy.write_text(POLICY)
    with _running_portal(tmp, {}, {"EPHEMERA_POLICY_FILE": str(policy)}) as url:
        # WebAuthn needs a host name: an IP address is never a relying party id.
        yield url.replace("127.0.0.1", "localhost"), tmp / "portal.sqlite3"


def _authenticator(ctx: Any, page: Any) -> tuple[Any, str]:
    cdp = ctx.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "usb", "hasResidentKey": False, "hasUserVerification": False,
        "automaticPresenceSimulation": True}})
    return cdp, added["authenticatorId"]


def _status(page: Any, base: str, req_id: str) -> str:
    return str(page.request.get(f"{base}/api/v1/requests/{req_id}").json()["status"])


def _csrf(ctx: Any) -> str:
    return str(next(c["value"] for c in ctx.cookies() if c["name"] == "csrftoken"))


def _approval_proofs(db: Path) -> list[dict[str, Any]]:
    import json
    import sqlite3

    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT data FROM portal_auditevent WHERE action = 'request.approval_recorded'").fetchall()
    return [json.loads(r[0])["approver_proof"] for r in rows]


def test_a_key_touch_approves_and_without_it_nothing_is_recorded(browser: Any, key_portal: tuple[str, Path]) -> None:
    base, db = key_portal
    with people(browser, base, "alice", "bob") as who:
        bob_ctx, bob = who["bob"]
        cdp, auth_id = _authenticator(bob_ctx, bob)

        # bob registers his key.
        bob.goto(f"{base}/profile/")
        bob.get_by_label("Name", exact=True).first.fill("virtual key")
        bob.get_by_role("button", name="Add a security key").click()
        expect(bob.locator("#key-list")).to_contain_text("virtual key")
        assert len(cdp.send("WebAuthn.getCredentials", {"authenticatorId": auth_id})["credentials"]) == 1

        # A touch approves.
        first = pending_request(who["alice"], base, reason="keyed approval one")
        bob.goto(f"{base}/requests/{first}/")
        expect(bob.get_by_text("asks for a touch of your security key")).to_be_visible()
        bob.get_by_role("button", name="Approve").click()
        expect(bob.get_by_text("You approved the request of alice.")).to_be_visible()
        assert _status(bob, base, first) == "approved"
        assert [p["security_key"] for p in _approval_proofs(db)] == ["virtual key"]

        # A touch is bound to its request and used once: captured on its way to the portal...
        second = pending_request(who["alice"], base, reason="keyed approval two")
        third = pending_request(who["alice"], base, reason="keyed approval three")
        captured: list[dict[str, str]] = []

        def capture(route: Any) -> None:
            captured.append({k: v[0] for k, v in parse_qs(route.request.post_data or "").items()})
            route.abort()

        bob.route("**/decide", capture)
        bob.goto(f"{base}/requests/{second}/")
        bob.get_by_role("button", name="Approve").click()
        bob.wait_for_timeout(500)
        bob.unroute("**/decide")
        assert captured and captured[0]["webauthn"]
        touch = captured[0]["webauthn"]
        headers = {"X-CSRFToken": _csrf(bob_ctx), "Referer": f"{base}/"}
        # ...it does not approve another request, even one whose own challenge is pending,
        assert bob.request.post(f"{base}/requests/{third}/approval-key", headers=headers).ok
        moved = bob.request.post(f"{base}/requests/{third}/decide", headers=headers,
                                 form={"verdict": "approve", "comment": "", "webauthn": touch})
        assert "Nothing was recorded" in moved.text()
        assert _status(bob, base, third) == "pending"
        # ...nor its own request once a newer challenge was asked for it.
        assert bob.request.post(f"{base}/requests/{second}/approval-key", headers=headers).ok
        stale = bob.request.post(f"{base}/requests/{second}/decide", headers=headers,
                                 form={"verdict": "approve", "comment": "", "webauthn": touch})
        assert "Nothing was recorded" in stale.text()
        assert _status(bob, base, second) == "pending"

        # Without the key (the authenticator lost it): nothing is recorded, and bob is told why.
        cdp.send("WebAuthn.clearCredentials", {"authenticatorId": auth_id})
        bob.goto(f"{base}/requests/{second}/")
        bob.get_by_role("button", name="Approve").click()
        expect(bob.get_by_text("Nothing was recorded.")).to_be_visible(timeout=60_000)
        assert _status(bob, base, second) == "pending"

        # Without a key registered at all, the page says where to get one.
        ctx_carol = browser.new_context()
        try:
            carol = ctx_carol.new_page()
            from tests.browser.test_request_approve_debug import login

            login(carol, base, "carol")
            carol.goto(f"{base}/requests/{second}/")
            carol.get_by_role("button", name="Approve").click()
            expect(carol.get_by_text("Nothing was recorded.")).to_be_visible(timeout=60_000)
            assert _status(bob, base, second) == "pending"
        finally:
            ctx_carol.close()
        assert len(_approval_proofs(db)) == 1
