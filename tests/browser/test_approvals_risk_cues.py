"""Risk cues in the live approvals queue (issue 11), in a real browser on a portal running
tests/browser/policy.yaml: bob's approval of a two-approver request turns "0 of 2" into
"1 of 2" in carol's open queue without a reload, and the "already has a debug session running
on this pod" cue comes and goes with alice's session, also without a reload."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.session_helpers import api, nginx_pod, people

pytestmark = pytest.mark.browser


def _ask(alice: Any, base: str, *, profile: str, reason: str) -> str:
    req = api(alice, base, "/api/v1/requests", {
        "namespace": "default", "pod": nginx_pod(alice[1], base), "container": "distroless-nginx-ctr",
        "image": "busybox", "profile": profile, "reason": reason, "duration_minutes": 20,
    })
    return str(req["id"])


def _open_queue(page: Page, base: str) -> None:
    page.goto(f"{base}/approvals/")
    expect(page.locator("#live-state")).to_have_attribute("data-state", "live")
    page.evaluate("window.__notReloaded = true")


def _not_reloaded(page: Page) -> bool:
    return bool(page.evaluate("window.__notReloaded === true"))


def test_a_first_approval_shows_as_1_of_2_in_another_approvers_open_queue(browser: Any, policy_portal_url: str) -> None:
    base = policy_portal_url
    with people(browser, base, "alice", "bob", "carol") as who:
        bob, carol = who["bob"][1], who["carol"][1]
        req = _ask(who["alice"], base, profile="sysadmin", reason="strace the nginx master")
        _open_queue(carol, base)
        item = carol.locator(f'[data-request-id="{req}"]')
        expect(item.locator(".risk")).to_have_attribute("data-risk", "high")
        expect(item.locator(".risk")).to_contain_text("pod · sysadmin")
        expect(item.locator(".cue-rule")).to_contain_text("sysadmin")
        expect(item.locator(".cue-approvals")).to_have_text("0 of 2 approvals")
        expect(item.locator(".cue-groups")).to_have_text("approvers")

        bob.goto(f"{base}/approvals/")
        bob.locator(f'[data-request-id="{req}"]').get_by_role("button", name="Approve").click()
        expect(bob.locator("#messages")).to_contain_text("You approved the request of alice.")

        expect(item.locator(".cue-approvals")).to_have_text("1 of 2 approvals", timeout=10000)
        expect(item.get_by_role("button", name="Approve")).to_be_visible()  # carol's vote is still wanted
        assert _not_reloaded(carol), "carol's queue reloaded instead of updating"
        api(who["carol"], base, f"/api/v1/requests/{req}/deny", {"comment": "test over"})
        expect(item).to_have_count(0, timeout=10000)


def test_the_open_session_cue_follows_alices_session_without_a_reload(browser: Any, policy_portal_url: str) -> None:
    base = policy_portal_url
    with people(browser, base, "alice", "bob", "carol") as who:
        alice, carol = who["alice"], who["carol"][1]
        first = _ask(alice, base, profile="general", reason="look at the workers")
        api(who["bob"], base, f"/api/v1/requests/{first}/approve", {"comment": "ok"})
        session = ""
        for _ in range(150):
            body = alice[1].request.get(f"{base}/api/v1/requests/{first}").json()
            if (body.get("session") or {}).get("status") == "running":
                session = body["session"]["id"]
                break
            alice[1].wait_for_timeout(200)
        assert session, "alice's session never ran"

        _open_queue(carol, base)
        second = _ask(alice, base, profile="netadmin", reason="and now tcpdump")
        item = carol.locator(f'[data-request-id="{second}"]')
        expect(item.locator(".risk")).to_have_attribute("data-risk", "elevated", timeout=10000)
        cue = item.locator(".cue-open-session")
        expect(cue).to_contain_text("alice already has a debug session running on this pod")
        expect(cue.get_by_role("link")).to_have_attribute("href", f"/sessions/{session}/")

        # Ending a session says nothing on the queue's websocket: the queue reads it again itself.
        api(alice, base, f"/api/v1/sessions/{session}/end", {"reason": "done"})
        expect(cue).to_have_count(0, timeout=20000)
        assert _not_reloaded(carol), "carol's queue reloaded instead of updating"
        api(who["carol"], base, f"/api/v1/requests/{second}/deny", {"comment": "test over"})
