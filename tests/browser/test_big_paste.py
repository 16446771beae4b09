"""A paste bigger than the server's websocket message limit (1 MiB in Daphne) arrives whole.

Before, xterm.js handed the whole paste to one websocket message; Daphne dropped the
connection, the page silently reconnected, and the paste was lost. The terminal now splits
input into frames of at most 64 KiB (frontend/src/terminal/protocol.ts).
"""

from __future__ import annotations

import secrets

import pytest
from playwright.sync_api import expect

from tests.browser.test_replay import NO_WEBGL, _api, _csrf_cookie
from tests.browser.test_request_approve_debug import PROMPT, login, wait_for_terminal_text

pytestmark = pytest.mark.browser

LINES = 15000  # of 100 bytes: 1.5 MB, half again Daphne's limit; each line well under a tty's 4096


def test_a_paste_over_the_message_limit_reaches_the_shell_whole(browser, portal_url):
    alice_ctx, bob_ctx = browser.new_context(), browser.new_context()
    try:
        alice_ctx.add_init_script(NO_WEBGL)
        alice, bob = alice_ctx.new_page(), bob_ctx.new_page()
        login(alice, portal_url, "alice")
        login(bob, portal_url, "bob")
        _csrf_cookie(alice, portal_url)
        _csrf_cookie(bob, portal_url)
        alice.get_by_label("Namespace", exact=True).select_option("default")
        pod = alice.locator("#id_pod option[value^=distroless-nginx-]")
        expect(pod).to_have_count(1)
        req = _api(alice_ctx, alice, portal_url, "/api/v1/requests", {
            "namespace": "default", "pod": pod.get_attribute("value"), "container": "distroless-nginx-ctr",
            "image": "busybox", "profile": "general", "reason": "big paste test", "duration_minutes": 15,
        })
        _api(bob_ctx, bob, portal_url, f"/api/v1/requests/{req['id']}/approve", {"comment": "ok"})
        session_id = ""
        for _ in range(150):
            session_id = (alice.request.get(f"{portal_url}/api/v1/requests/{req['id']}").json().get("session") or {}).get("id", "")
            if session_id:
                break
            alice.wait_for_timeout(200)
        alice.goto(f"{portal_url}/sessions/{session_id}/")
        expect(alice.locator("#session-status")).to_have_attribute("data-status", "running", timeout=40000)
        alice.locator("#terminal .xterm").click()
        try:
            wait_for_terminal_text(alice, PROMPT, timeout=5)
        except AssertionError:
            alice.keyboard.press("Enter")
            wait_for_terminal_text(alice, PROMPT, timeout=15)
        target = f"/tmp/ephemera-paste-{secrets.token_hex(4)}"
        alice.keyboard.type(f"stty -echo; cat > {target}\n")
        alice.wait_for_timeout(500)
        alice.evaluate(
            """(lines) => {
                const text = ("x".repeat(99) + "\\n").repeat(lines);
                const area = document.querySelector("#terminal .xterm-helper-textarea");
                const data = new DataTransfer();
                data.setData("text/plain", text);
                area.dispatchEvent(new ClipboardEvent("paste", {clipboardData: data, bubbles: true, cancelable: true}));
            }""",
            LINES,
        )
        alice.wait_for_timeout(1000)
        alice.keyboard.press("Control+D")
        alice.keyboard.type(f"stty echo; echo size-$(wc -c < {target})-bytes; rm -f {target}\n")
        wait_for_terminal_text(alice, rf"size-{LINES * 100}-bytes", timeout=60)
    finally:
        alice_ctx.close()
        bob_ctx.close()
