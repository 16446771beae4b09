"""Flash messages don't outlive the page they reported on (issue 9, bug 5): bob approves one of
alice's requests from the live queue, and when her next request arrives in that same page, the
"You approved the request of alice." above it goes."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.session_helpers import api, pending_request, people

pytestmark = pytest.mark.browser


def _request(alice: Any, base: str, reason: str) -> str:
    return pending_request(alice, base, reason=reason, minutes=10)


def test_a_new_request_in_the_live_queue_clears_the_last_decisions_message(browser: Any, portal_url: str) -> None:
    with people(browser, portal_url, "alice", "bob") as who:
        bob = who["bob"][1]
        first = _request(who["alice"], portal_url, "the first request")
        bob.goto(f"{portal_url}/approvals/")
        bob.locator(f'[data-request-id="{first}"]').get_by_role("button", name="Approve").click()
        expect(bob.locator("#messages")).to_contain_text("You approved the request of alice.")
        expect(bob.locator("#live-state")).to_have_attribute("data-state", "live")
        bob.evaluate("window.__notReloaded = true")

        second = _request(who["alice"], portal_url, "the second request")
        expect(bob.locator(f'[data-request-id="{second}"]')).to_be_visible(timeout=10000)
        expect(bob.locator("#messages")).to_have_count(0)
        assert bob.evaluate("window.__notReloaded === true"), "the queue reloaded instead of updating"
        api(who["bob"], portal_url, f"/api/v1/requests/{second}/deny", {"comment": "test over"})
