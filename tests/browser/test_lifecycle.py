"""An engineer's open terminal follows what approvers do: an extension moves the countdown,
a revoke closes the terminal with the approver's reason. Two people, two browser contexts."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from playwright.sync_api import expect

from tests.browser.test_request_approve_debug import PROMPT, login, wait_for_terminal_text

pytestmark = pytest.mark.browser

NO_WEBGL = (
    "const orig = HTMLCanvasElement.prototype.getContext;"
    "HTMLCanvasElement.prototype.getContext = function (kind, ...rest) {"
    "  return /webgl/i.test(String(kind)) ? null : orig.call(this, kind, ...rest); };"
)


def test_an_extension_moves_the_countdown_and_a_revoke_closes_the_terminal_with_its_reason(browser, portal_url):
    alice_ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    bob_ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        alice_ctx.add_init_script(NO_WEBGL)  # read the terminal as text (DOM renderer)
        alice, bob = alice_ctx.new_page(), bob_ctx.new_page()
        login(alice, portal_url, "alice")
        login(bob, portal_url, "bob")

        alice.goto(f"{portal_url}/requests/new")
        expect(alice.locator("#id_namespace option[value=default]")).to_have_count(1)
        alice.get_by_label("Namespace", exact=True).select_option("default")
        pod_option = alice.locator("#id_pod option[value^=distroless-nginx-]")
        expect(pod_option).to_have_count(1)
        alice.get_by_label("Pod", exact=True).select_option(pod_option.get_attribute("value"))
        expect(alice.get_by_label("Target container", exact=True)).to_have_value("distroless-nginx-ctr")
        alice.get_by_label("Reason", exact=True).fill("checking the extension and revoke paths")
        alice.get_by_label("Duration (minutes)", exact=True).fill("10")
        alice.get_by_role("button", name="Request access").click()
        expect(alice).to_have_url(re.compile(r"/requests/[0-9a-f-]{36}/$"))

        bob.goto(alice.url)
        bob.get_by_label("Comment").fill("go ahead")
        bob.get_by_role("button", name="Approve").click()

        # Her request page goes to the session's terminal once it runs.
        expect(alice).to_have_url(re.compile(r"/sessions/[0-9a-f-]{36}/$"), timeout=40000)
        expect(alice.locator("#session-status")).to_have_attribute("data-status", "running", timeout=40000)
        alice.locator("#terminal .xterm").click()
        try:
            wait_for_terminal_text(alice, PROMPT, timeout=5)
        except AssertionError:
            alice.keyboard.press("Enter")
            wait_for_terminal_text(alice, PROMPT, timeout=15)
        session_url = alice.url

        # alice asks for more time from her session page.
        alice.get_by_label("Ask for more time (minutes)").fill("20")
        alice.get_by_label("Why", exact=True).fill("the leak only shows after 15 minutes")
        alice.get_by_role("button", name="Ask for an extension").click()
        expect(alice.locator("#session-extensions")).to_contain_text("+20 min")
        expect(alice.locator("#session-status")).to_have_attribute("data-status", "running", timeout=20000)
        before = datetime.fromisoformat(alice.locator("#session-countdown").get_attribute("data-expires-at"))
        wait_for_terminal_text(alice, PROMPT, timeout=15)

        # bob grants it from the approvals queue; alice's open terminal is told and its countdown moves.
        bob.goto(f"{portal_url}/approvals/")
        item = bob.locator("[data-extension-id]")
        expect(item).to_contain_text("the leak only shows after 15 minutes")
        item.get_by_role("button", name="Extend").click()
        expect(alice.locator("#terminal-banner")).to_contain_text("extended by 20 minutes", timeout=15000)
        after = datetime.fromisoformat(alice.locator("#session-countdown").get_attribute("data-expires-at"))
        assert (after - before).total_seconds() == pytest.approx(20 * 60, abs=2)

        # bob revokes with a reason; alice's terminal closes and shows it.
        bob.goto(session_url)
        bob.get_by_label(re.compile("End this session for alice")).fill("incident closed, stopping all debug access")
        bob.locator("form.revoke-form").get_by_role("button", name="End session").click()
        expect(alice.locator("#session-status")).to_have_attribute("data-status", "ended", timeout=20000)
        expect(alice.locator("#terminal-banner")).to_contain_text("incident closed, stopping all debug access")
        wait_for_terminal_text(alice, r"incident closed, stopping all debug access")
    finally:
        alice_ctx.close()
        bob_ctx.close()
