"""The open session page follows the session, whatever ends or changes it (issue 9, bugs 2-6
and 12, and the time warnings): alice keeps her page open while her shell exits, bob decides
her extension and revokes her session, a second tab takes her terminal, the time runs low."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.session_helpers import api, approved_session, open_terminal, people, reap_until, wait_for_prompt
from tests.browser.test_request_approve_debug import wait_for_terminal_text

pytestmark = pytest.mark.browser


def assert_shows_ended(page: Page, end_message: str) -> None:
    """Everything on the page says the session is over; nothing still offers to act on it."""
    expect(page.locator("#session-status")).to_have_attribute("data-status", "ended", timeout=20000)
    expect(page.locator("#session-status")).to_have_text("Ended")
    # "Ended running": the progress of a running session was left next to the new status.
    progress = page.locator("#session-progress")
    assert not (progress.is_visible() and (progress.text_content() or "").strip().lower() == "running")
    # The countdown used to freeze at what it last showed ("42:48 left").
    expect(page.locator("#session-countdown")).to_have_text("none: the session is over")
    page.wait_for_timeout(1200)
    expect(page.locator("#session-countdown")).to_have_text("none: the session is over")
    expect(page.locator("#end-session")).to_be_hidden()
    expect(page.locator("#extend-form")).to_be_hidden()
    expect(page.locator("#session-end-message")).to_contain_text(end_message)


def test_when_the_shell_exits_the_open_page_shows_the_session_ended(
    browser: Any, portal_url: str, portal_env: dict[str, str]
) -> None:
    with people(browser, portal_url, "alice", "bob") as who:
        session_id = approved_session(who["alice"], who["bob"], portal_url, reason="checking what exit does")
        alice = who["alice"][1]
        open_terminal(alice, portal_url, session_id)
        # Bug 6: the page was drawn before the terminal opened, and said it never had.
        expect(alice.get_by_text("the terminal was never opened")).to_have_count(0)
        expect(alice.locator("#replay-hint")).to_have_text("The replay appears when the session has ended.")
        expect(alice.locator("#extend-form")).to_be_visible()

        alice.keyboard.type("exit\n")
        # The reaper (its own process under `make run`) sees the debug container terminated
        # and ends the session; nothing tells the page but the server's status.
        reap_until(portal_env, alice, portal_url, session_id, "ended")
        assert_shows_ended(alice, "The debug shell exited")
        expect(alice.locator("#terminal-banner")).to_contain_text("The debug shell exited")


def test_an_extension_decision_and_a_revoke_reach_the_open_page(browser: Any, portal_url: str) -> None:
    with people(browser, portal_url, "alice", "bob") as who:
        session_id = approved_session(who["alice"], who["bob"], portal_url, reason="extension and revoke, live")
        alice, bob = who["alice"][1], who["bob"][1]
        open_terminal(alice, portal_url, session_id)
        # Bug 3, "Running running": the status row says the status once.
        expect(alice.locator("#session-status")).to_have_text("Running")
        expect(alice.locator("#session-progress")).to_be_hidden()

        # Asking goes through the API: the page is not reloaded and the terminal stays attached.
        alice.evaluate("window.__notReloaded = true")
        alice.get_by_label("Ask for more time (minutes)").fill("20")
        alice.get_by_label("Why", exact=True).fill("the leak shows after a while")
        alice.get_by_role("button", name="Ask for an extension").click()
        expect(alice.locator("#extend-result")).to_have_text("Your extension was sent to the approvers.")
        expect(alice.locator("#session-extensions")).to_contain_text("+20 min: Pending")
        assert alice.evaluate("window.__notReloaded === true"), "asking for an extension reloaded the page"
        expect(alice.locator("#terminal-banner")).to_contain_text("Connected")

        # Bug 4: bob's decision reaches alice's open page.
        bob.goto(f"{portal_url}/approvals/")
        bob.locator("[data-extension-id]").get_by_role("button", name="Extend").click()
        expect(alice.locator("#session-extensions")).to_contain_text("+20 min: Approved by bob", timeout=15000)
        expect(alice.locator("#session-extensions")).not_to_contain_text("Pending")
        expect(alice.locator("#extend-result")).to_be_hidden()

        # The form without script (a native submit) still works; its flash message goes once
        # the page shows the decision (bug 5), a denial too (no terminal message for that one).
        alice.get_by_label("Ask for more time (minutes)").fill("5")
        alice.get_by_label("Why", exact=True).fill("five more")
        alice.evaluate("document.getElementById('extend-form').submit()")
        expect(alice.locator("#messages")).to_contain_text("Your extension was sent to the approvers.")
        expect(alice.locator("#session-status")).to_have_attribute("data-status", "running", timeout=20000)
        pending = next(
            e
            for e in alice.request.get(f"{portal_url}/sessions/{session_id}/status.json").json()["extensions"]
            if e["status"] == "pending"
        )
        api(who["bob"], portal_url, f"/api/v1/extensions/{pending['id']}/deny", {"comment": "no more time"})
        expect(alice.locator("#session-extensions")).to_contain_text("+5 min: Denied by bob (no more time)", timeout=15000)
        expect(alice.locator("#messages")).to_have_count(0)
        wait_for_prompt(alice)

        # Bug 3: after a revoke the status read "Ended running" and the countdown froze.
        bob.goto(f"{portal_url}/sessions/{session_id}/")
        bob.get_by_label(re.compile("End this session for alice")).fill("incident over, closing debug access")
        bob.locator("#revoke-form").get_by_role("button", name="End session").click()
        assert_shows_ended(alice, "incident over, closing debug access")
        expect(alice.locator("#terminal-banner")).to_contain_text("incident over, closing debug access")


def test_a_terminal_replaced_by_another_tab_says_so_and_can_take_over(browser: Any, portal_url: str) -> None:
    with people(browser, portal_url, "alice", "bob") as who:
        session_id = approved_session(who["alice"], who["bob"], portal_url, reason="two tabs")
        alice_ctx, first = who["alice"]
        open_terminal(first, portal_url, session_id)
        second = alice_ctx.new_page()
        open_terminal(second, portal_url, session_id)

        # The first tab no longer reaches the shell (the server closed it with 4409): it says
        # so over the screen instead of swallowing what is typed.
        expect(first.locator("#terminal-banner")).to_contain_text("another tab or window", timeout=10000)
        expect(first.locator("#terminal-replaced")).to_be_visible()
        take_over = first.get_by_role("button", name="Take over here")
        expect(take_over).to_be_visible()

        take_over.click()
        expect(first.locator("#terminal-replaced")).to_be_hidden()
        expect(take_over).to_be_hidden()
        expect(first.locator("#terminal-banner")).to_contain_text("Reattached", timeout=15000)
        expect(second.locator("#terminal-banner")).to_contain_text("another tab or window", timeout=10000)
        expect(second.get_by_role("button", name="Take over here")).to_be_visible()
        first.locator("#terminal .xterm").click()
        first.keyboard.type("echo back-$((1+2))\n")
        wait_for_terminal_text(first, r"back-3")


def test_the_time_running_low_is_announced_and_the_terminal_takes_the_width(browser: Any, portal_url: str) -> None:
    with people(browser, portal_url, "alice", "bob", width=1600) as who:
        session_id = approved_session(who["alice"], who["bob"], portal_url, reason="short session", minutes=6)
        alice = who["alice"][1]
        alice.clock.install()  # the page's clock, moved on below; the server's limit stays
        open_terminal(alice, portal_url, session_id)

        # The page used to cap the terminal at 1100 px (about 116 columns).
        box = alice.locator("#terminal").bounding_box()
        assert box is not None and box["width"] >= 1500, box

        expect(alice.locator("#session-warning")).to_be_hidden()
        alice.clock.fast_forward("01:10")
        expect(alice.locator("#session-warning")).to_contain_text("Less than 5 minutes left")
        expect(alice.locator("#session-warning")).to_contain_text("Ask for more time below")
        expect(alice.locator("#terminal-warning")).to_contain_text("Less than 5 min left")
        alice.clock.fast_forward("04:00")
        expect(alice.locator("#session-warning")).to_contain_text("Less than a minute left")
        expect(alice.locator("#terminal-warning")).to_contain_text("Less than a minute left")
