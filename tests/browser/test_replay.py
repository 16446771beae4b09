"""Replaying a recorded session in a real browser: an auditor opens an ended session's page,
the player loads the .cast, and clicking a typed command jumps the player to it.

The session is made for real: alice's request and bob's approval through the JSON API (with
their browser sessions), alice typing in the xterm terminal, then ending the session.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.test_request_approve_debug import PROMPT, login, wait_for_terminal_text

pytestmark = pytest.mark.browser

NO_WEBGL = (
    "const orig = HTMLCanvasElement.prototype.getContext;"
    "HTMLCanvasElement.prototype.getContext = function (kind, ...rest) {"
    "  return /webgl/i.test(String(kind)) ? null : orig.call(this, kind, ...rest); };"
)


def _api(ctx: BrowserContext, page: Page, base: str, path: str, data: dict) -> dict:
    csrf = next(c["value"] for c in ctx.cookies() if c["name"] == "csrftoken")
    resp = page.request.post(f"{base}{path}", data=data, headers={"X-CSRFToken": csrf, "Referer": f"{base}/"})
    assert resp.ok, (resp.status, resp.text())
    return resp.json()


def _csrf_cookie(page: Page, base: str) -> None:
    page.goto(f"{base}/requests/new")  # a page with a form sets the CSRF cookie


def test_an_auditor_replays_a_session_and_jumps_to_a_command(browser, portal_url):
    ctxs = [browser.new_context(viewport={"width": 1280, "height": 900}) for _ in range(3)]
    alice_ctx, bob_ctx, dave_ctx = ctxs
    try:
        alice_ctx.add_init_script(NO_WEBGL)
        alice, bob, dave = (c.new_page() for c in ctxs)
        for page, name in ((alice, "alice"), (bob, "bob"), (dave, "dave")):
            login(page, portal_url, name)
        _csrf_cookie(alice, portal_url)
        _csrf_cookie(bob, portal_url)
        pods = alice.request.get(f"{portal_url}/api/v1/requests").ok  # the API answers this browser session
        assert pods
        pod = alice.locator("#id_pod option[value^=distroless-nginx-]")
        alice.get_by_label("Namespace", exact=True).select_option("default")
        expect(pod).to_have_count(1)
        req = _api(
            alice_ctx,
            alice,
            portal_url,
            "/api/v1/requests",
            {
                "namespace": "default",
                "pod": pod.get_attribute("value"),
                "container": "distroless-nginx-ctr",
                "image": "busybox",
                "profile": "general",
                "reason": "replay test: checking nginx config",
                "duration_minutes": 15,
            },
        )
        _api(bob_ctx, bob, portal_url, f"/api/v1/requests/{req['id']}/approve", {"comment": "fine"})
        session_id = ""
        for _ in range(100):
            session_id = (alice.request.get(f"{portal_url}/api/v1/requests/{req['id']}").json().get("session") or {}).get(
                "id", ""
            )
            if session_id:
                break
            alice.wait_for_timeout(200)
        assert session_id

        alice.goto(f"{portal_url}/sessions/{session_id}/")
        expect(alice.locator("#session-status")).to_have_attribute("data-status", "running", timeout=40000)
        expect(alice.locator("#terminal-banner")).to_contain_text("recorded", timeout=15000)
        alice.locator("#terminal .xterm").click()
        try:
            wait_for_terminal_text(alice, PROMPT, timeout=5)
        except AssertionError:
            alice.keyboard.press("Enter")
            wait_for_terminal_text(alice, PROMPT, timeout=15)
        alice.keyboard.type("echo first-$((20+1))\n")
        wait_for_terminal_text(alice, r"first-21")
        alice.wait_for_timeout(2500)  # idle time between the commands, so the jump is visible
        alice.keyboard.type("echo second-$((40+2))\n")
        wait_for_terminal_text(alice, r"second-42")
        alice.wait_for_timeout(1200)  # at least one flush of the recorder
        _api(alice_ctx, alice, portal_url, f"/api/v1/sessions/{session_id}/end", {})

        dave.goto(f"{portal_url}/sessions/{session_id}/")
        commands = dave.locator("#command-list [data-command-index]")
        expect(commands).to_have_count(2)
        expect(commands.nth(0)).to_contain_text("echo first-$((20+1))")
        expect(commands.nth(1)).to_contain_text("echo second-$((40+2))")
        expect(dave.locator("#replay .ap-player")).to_be_visible(timeout=15000)
        expect(dave.locator("#audit-timeline li[data-action=\"session.provisioned\"]")).to_contain_text("Ephemera started the debug container")
        assert dave.evaluate("window.ephemeraReplay.getCurrentTime()") == 0

        second_t = float(commands.nth(1).get_attribute("data-t"))
        commands.nth(1).click()
        expect(commands.nth(1)).to_have_attribute("aria-current", "")
        dave.wait_for_function(f"Math.abs(window.ephemeraReplay.getCurrentTime() - {second_t}) < 0.5", timeout=10000)
        # The player's screen shows the session as it was at that command: the first
        # command's output is there, the second's is not yet.
        screen = dave.locator("#replay .ap-term")
        expect(screen).to_contain_text("first-21", timeout=10000)
        expect(screen).not_to_contain_text("second-42")
        # Playing on from there shows the second command's output.
        dave.locator("#replay .ap-player").click()
        expect(screen).to_contain_text("second-42", timeout=15000)
        dave.screenshot(path=str(_shot()), full_page=True)

        # The download button serves the same recording.
        with dave.expect_download() as download:
            dave.locator("#recording-download").click()
        assert re.match(r"ephemera-session-.*\.cast$", download.value.suggested_filename)
    finally:
        for ctx in ctxs:
            ctx.close()


def _shot():  # type: ignore[no-untyped-def]
    from tests.browser.test_request_approve_debug import SCREENSHOTS

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / "replay.png"
