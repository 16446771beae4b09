"""The whole product in a real browser: request, live approval, terminal, end.

alice and bob use two separate browser contexts (two cookie jars), like two people.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

PROMPT = r"(^|\n)\S*\s?[#$] ?"
# Screenshots go to var/ on every run; EPHEMERA_UPDATE_SCREENSHOTS=1 writes the README's
# copies in docs/screenshots instead (a test run must not change tracked files).
_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = _ROOT / "docs" / "screenshots" if os.environ.get("EPHEMERA_UPDATE_SCREENSHOTS") == "1" else _ROOT / "var" / "test" / "screenshots"


def login(page: Page, base: str, name: str) -> None:
    page.goto(f"{base}/login/")
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill(f"{name}-demo-pass")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text(f"Signed in as {name}")).to_be_visible()


def terminal_text(page: Page) -> str:
    return page.locator("#terminal .xterm-rows").inner_text()


def wait_for_terminal_text(page: Page, pattern: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = terminal_text(page)
        if re.search(pattern, text):
            return text
        page.wait_for_timeout(200)
    raise AssertionError(f"terminal never showed {pattern!r}; it shows:\n{text}")


def find_in_scrollback(page: Page, pattern: str) -> None:
    box = page.locator("#terminal .xterm-screen").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    seen = ""
    for _ in range(200):
        seen = terminal_text(page)
        if re.search(pattern, seen):
            return
        page.mouse.wheel(0, -box["height"] / 2)
        page.wait_for_timeout(50)
    raise AssertionError(f"{pattern!r} is not in the terminal's scrollback; last screen:\n{seen}")


def test_request_live_approval_terminal_and_end(browser, portal_url):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    alice_ctx = browser.new_context(viewport={"width": 1280, "height": 860})
    bob_ctx = browser.new_context(viewport={"width": 1280, "height": 860})
    try:
        # xterm draws with WebGL when it can, and then the screen is pixels only. Hiding WebGL
        # from alice's pages makes the page take its own DOM-renderer fallback, whose rows we
        # can read as text: what the user sees, not a hook into the page's internals.
        alice_ctx.add_init_script(
            "const orig = HTMLCanvasElement.prototype.getContext;"
            "HTMLCanvasElement.prototype.getContext = function (kind, ...rest) {"
            "  return /webgl/i.test(String(kind)) ? null : orig.call(this, kind, ...rest); };"
        )
        alice, bob = alice_ctx.new_page(), bob_ctx.new_page()
        login(alice, portal_url, "alice")
        login(bob, portal_url, "bob")

        # bob watches the queue; it must update without a reload.
        bob.goto(f"{portal_url}/approvals/")
        expect(bob.locator("#live-state")).to_have_attribute("data-state", "live")
        bob.evaluate("window.__notReloaded = true")

        # alice fills the form from live cluster data.
        alice.goto(f"{portal_url}/requests/new")
        expect(alice.locator("#id_namespace option[value=default]")).to_have_count(1)
        alice.get_by_label("Namespace", exact=True).select_option("default")
        pod_option = alice.locator("#id_pod option[value^=distroless-nginx-]")
        expect(pod_option).to_have_count(1)
        pod = pod_option.get_attribute("value")
        alice.get_by_label("Pod", exact=True).select_option(pod)
        expect(alice.get_by_label("Target container", exact=True)).to_have_value("distroless-nginx-ctr")
        expect(alice.get_by_label("Debug image", exact=True)).to_have_value("busybox")
        expect(alice.get_by_role("radio", name="general", exact=True)).to_be_checked()
        alice.get_by_label("Reason", exact=True).fill("nginx workers look stuck; checking ps")
        alice.get_by_label("Duration (minutes)", exact=True).fill("15")
        # Chromium puts the scroll position back from before a full-page screenshot on the next
        # input, between the click's mousedown and mouseup: the click then misses the button.
        # Scrolled to it first, that position is the button's.
        alice.get_by_role("button", name="Request access").scroll_into_view_if_needed()
        alice.screenshot(path=str(SCREENSHOTS / "request-form.png"), full_page=True)
        alice.get_by_role("button", name="Request access").click()
        expect(alice).to_have_url(re.compile(r"/requests/[0-9a-f-]{36}/$"))
        expect(alice.get_by_text("sent to the approvers")).to_be_visible()
        request_id = alice.url.rstrip("/").rsplit("/", 1)[-1]

        # bob sees it arrive live, in the same page.
        item = bob.locator(f'[data-request-id="{request_id}"]')
        expect(item).to_be_visible(timeout=10000)
        expect(item).to_contain_text(f"default/{pod}:distroless-nginx-ctr")
        expect(item).to_contain_text("nginx workers look stuck")
        assert bob.evaluate("window.__notReloaded === true"), "the approvals page reloaded"
        bob.screenshot(path=str(SCREENSHOTS / "approvals.png"), full_page=True)
        item.get_by_label("Comment").fill("ok, 15 minutes, read-only poking please")
        item.get_by_role("button", name="Approve").click()
        expect(bob.get_by_text("You approved the request of alice")).to_be_visible()
        expect(bob.locator(f'[data-request-id="{request_id}"]')).to_have_count(0)

        # alice's request page follows the request by itself and, once the session runs, takes
        # her to its terminal; bob's decision and comment are on that page too.
        expect(alice).to_have_url(re.compile(r"/sessions/[0-9a-f-]{36}/$"), timeout=40000)
        expect(alice.locator("#session-review")).to_contain_text("ok, 15 minutes, read-only poking please")
        expect(alice.locator("#session-status")).to_have_attribute("data-status", "running", timeout=40000)
        expect(alice.locator("#terminal .xterm")).to_be_visible(timeout=10000)
        alice.locator("#terminal .xterm").click()
        # Like kubectl ("If you don't see a command prompt, try pressing enter"): an attach
        # joins a shell that printed its prompt before we were there.
        try:
            wait_for_terminal_text(alice, PROMPT, timeout=5)
        except AssertionError:
            alice.keyboard.press("Enter")
            wait_for_terminal_text(alice, PROMPT, timeout=15)

        alice.keyboard.type("ps aux\n")
        # The debug shell is in the target's PID namespace: the nginx master is PID 1.
        wait_for_terminal_text(alice, r"\S[^\n]*\n\S*\s?[#$]\s*$")
        find_in_scrollback(alice, r"nginx: worker process")
        find_in_scrollback(alice, r"\b1 nonroot +nginx: master process")
        # Back to the bottom (where the end-of-session notice will be written), then let the
        # wheel scrolling settle so the next click lands where the button now is.
        for _ in range(200):
            if re.search(r"\n\S*\s?[#$]\s*$", terminal_text(alice)):
                break
            alice.mouse.wheel(0, 400)
            alice.wait_for_timeout(30)
        alice.mouse.move(0, 0)
        alice.evaluate("window.scrollTo(0, 0)")
        alice.wait_for_timeout(300)
        # The README's terminal.png comes from tests/browser/test_running_sessions.py (the queue
        # next to a session).

        dialogs: list[str] = []

        def accept(dialog) -> None:
            dialogs.append(dialog.message)
            dialog.accept()

        alice.on("dialog", accept)
        alice.get_by_role("button", name="End session").click()
        try:
            expect(alice.locator("#session-status")).to_have_attribute("data-status", "ended", timeout=20000)
        except AssertionError as exc:
            raise AssertionError(
                f"not ended; banner: {alice.locator('#terminal-banner').inner_text()!r}; dialogs: {dialogs}"
            ) from exc
        expect(alice.locator("#terminal-banner")).to_contain_text(re.compile("ended", re.I), timeout=10000)
        assert dialogs and "End this debug session" in dialogs[0]
        wait_for_terminal_text(alice, r"(?i)ended")
    finally:
        alice_ctx.close()
        bob_ctx.close()
