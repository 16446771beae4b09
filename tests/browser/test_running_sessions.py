"""Running sessions for approvers (issue 9, "Missing for the people who use it", first two
items) in a real browser: bob's /sessions/running/ follows alice's session live (who watches,
time left) without a reload; alice's terminal says who starts and stops watching; bob revokes
from the list with a reason and alice's page shows it.

It also takes the README's top picture (docs/screenshots/terminal.png with
EPHEMERA_UPDATE_SCREENSHOTS=1, else var/test/screenshots/): bob's approvals queue next to
alice's session, composed by Chromium itself (no image library).
"""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import REPO
from tests.browser.session_helpers import api, approved_session, open_terminal, pending_request, people
from tests.browser.test_csp import RECORD_VIOLATIONS
from tests.browser.test_request_approve_debug import SCREENSHOTS, terminal_text, wait_for_terminal_text

pytestmark = pytest.mark.browser

SHOT = {"width": 1000, "height": 820}
ARTIFACTS = REPO / "var" / "test" / "screenshots"


def _shot(page: Page) -> str:
    page.set_viewport_size(SHOT)
    page.evaluate("window.scrollTo(0, 0)")
    page.mouse.move(0, 0)
    page.wait_for_timeout(400)  # the terminal refits to the new width
    return base64.b64encode(page.screenshot()).decode()


def _compose(browser: Browser, left: tuple[str, str], right: tuple[str, str]) -> None:
    """Two screenshots side by side with a caption each, as one PNG."""
    ctx = browser.new_context(viewport={"width": 2 * SHOT["width"] + 24, "height": SHOT["height"] + 56})
    try:
        page = ctx.new_page()
        cells = "".join(
            f'<figure><figcaption>{caption}</figcaption><img src="data:image/png;base64,{png}"></figure>'
            for caption, png in (left, right)
        )
        page.set_content(
            "<!doctype html><style>body{margin:0;background:#10243d;display:flex;gap:8px;padding:8px;}"
            "figure{margin:0}figcaption{color:#fff;font:600 15px system-ui,sans-serif;padding:4px 2px 8px}"
            f"img{{display:block;width:{SHOT['width']}px;border-radius:6px}}</style>{cells}"
        )
        page.wait_for_function("Array.from(document.images).every((i) => i.complete && i.naturalWidth > 0)")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "terminal.png"))
    finally:
        ctx.close()


def _pending_request(alice: Any, base: str) -> str:
    return pending_request(alice, base, reason="INC-4711: 502s from the ingress, need tcpdump on the pod", minutes=20)


def test_the_running_list_follows_watchers_and_revokes_live(browser: Browser, portal_url: str) -> None:
    with people(browser, portal_url, "alice", "bob", "dave") as who:
        alice, bob, dave = who["alice"][1], who["bob"][1], who["dave"][1]
        for name in ("alice", "bob"):
            who[name][0].add_init_script(RECORD_VIOLATIONS)  # from their next page on
        session_id = approved_session(who["alice"], who["bob"], portal_url, reason="nginx workers look stuck")
        open_terminal(alice, portal_url, session_id)

        bob.goto(f"{portal_url}/approvals/")
        bob.get_by_role("link", name="Running", exact=True).click()
        expect(bob).to_have_url(f"{portal_url}/sessions/running/")
        row = bob.locator(f'[data-session-id="{session_id}"]')
        expect(row).to_be_visible()
        expect(row).to_contain_text("alice")
        expect(row).to_contain_text("nginx workers look stuck")
        expect(row.locator(".watchers")).to_have_text("nobody")
        expect(row.locator(".countdown")).to_have_text(re.compile(r"^\d+:\d\d left$"))
        expect(row.get_by_role("link", name="Watch")).to_have_attribute("href", f"/sessions/{session_id}/watch")
        bob.evaluate("window.__notReloaded = true")

        # dave (auditor) starts watching: alice is told in her terminal's bar, bob's list follows.
        dave.goto(f"{portal_url}/sessions/{session_id}/watch")
        expect(dave.locator("#watch-banner")).to_contain_text("Watching alice's session", timeout=15000)
        expect(alice.locator("#terminal-banner")).to_contain_text("dave is watching this session", timeout=10000)
        expect(alice.locator("#terminal-watchers")).to_have_text("Watched by dave (read-only)")
        expect(row.locator(".watchers")).to_have_text("dave", timeout=15000)
        assert bob.evaluate("window.__notReloaded === true"), "the running list reloaded instead of updating"
        assert bob.evaluate("window.__csp") == [] and alice.evaluate("window.__csp") == []
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        bob.screenshot(path=str(ARTIFACTS / "running.png"), full_page=True)  # to look at; not in the README

        # The README's picture: bob's queue (with a request waiting) next to alice's session.
        # The debug shell's process list: the target's (PID 1, the nginx master, and its workers),
        # then the debug shells (this portal's other sessions on the pod share the namespace too).
        alice.keyboard.type("ps aux | head -7; echo PS-$((6*7))\n")
        wait_for_terminal_text(alice, r"PS-42\s*\n\S*\s?[#$]\s*$")
        assert re.search(r"\b1 nonroot +nginx: master process", terminal_text(alice)), terminal_text(alice)
        pending = _pending_request(who["alice"], portal_url)
        try:
            bob.goto(f"{portal_url}/approvals/")
            expect(bob.locator(f'[data-request-id="{pending}"]')).to_be_visible()
            _compose(
                browser,
                ("bob (approver): the live approvals queue", _shot(bob)),
                ("alice: her debug session, recorded, with dave watching", _shot(alice)),
            )
        finally:
            api(who["alice"], portal_url, f"/api/v1/requests/{pending}/cancel", {})

        # dave leaves: alice is told, and her badge goes.
        dave.goto(f"{portal_url}/")
        expect(alice.locator("#terminal-banner")).to_contain_text("dave stopped watching", timeout=10000)
        expect(alice.locator("#terminal-watchers")).to_be_hidden()

        # bob revokes from the list, with a reason; the list and alice's page follow.
        bob.goto(f"{portal_url}/sessions/running/")
        row = bob.locator(f'[data-session-id="{session_id}"]')
        expect(row.locator(".watchers")).to_have_text("nobody")
        bob.evaluate("window.__notReloaded = true")
        row.get_by_label(re.compile("Reason for alice")).fill("rotating the credentials now")
        row.get_by_role("button", name="Revoke").click()
        expect(bob.locator("#running-result")).to_contain_text("Revoked")
        expect(bob.locator(f'[data-session-id="{session_id}"]')).to_have_count(0, timeout=10000)
        assert bob.evaluate("window.__notReloaded === true")
        assert bob.evaluate("window.__csp") == []
        expect(alice.locator("#session-status")).to_have_attribute("data-status", "ended", timeout=20000)
        expect(alice.locator("#session-end-message")).to_contain_text("rotating the credentials now")


def test_a_revoke_without_a_reason_is_refused_in_the_list(browser: Browser, portal_url: str) -> None:
    """The reason is required by the service, not only by the form's `required`."""
    with people(browser, portal_url, "alice", "bob", "carol") as who:
        session_id = approved_session(who["alice"], who["bob"], portal_url, reason="revoke needs a reason")
        carol = who["carol"][1]
        open_terminal(who["alice"][1], portal_url, session_id)
        carol.goto(f"{portal_url}/sessions/running/")
        row = carol.locator(f'[data-session-id="{session_id}"]')
        reason = row.get_by_label(re.compile("Reason for alice"))
        reason.evaluate("(el) => el.removeAttribute('required')")  # what a script could send
        reason.fill("   ")
        row.get_by_role("button", name="Revoke").click()
        expect(carol.locator("#running-result")).to_contain_text("Say why you end this session")
        expect(carol.locator("#running-result")).to_have_attribute("data-kind", "error")
        expect(row).to_be_visible()
        api(who["alice"], portal_url, f"/api/v1/sessions/{session_id}/end", {})
        expect(carol.locator(f'[data-session-id="{session_id}"]')).to_have_count(0, timeout=15000)
