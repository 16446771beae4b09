"""Every page works under the Content-Security-Policy: no violation on any of them.

Each page is opened in Chromium with a listener for `securitypolicyviolation` events and the
console's CSP reports; the terminal (xterm.js, DOM renderer and WebGL), the live view and
the replay (asciinema-player) are used, not only loaded. And the policy is real: a script
injected into a page does not run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.test_replay import NO_WEBGL, _api, _csrf_cookie
from tests.browser.test_request_approve_debug import login, wait_for_terminal_text

pytestmark = pytest.mark.browser

RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.effectiveDirective} blocked ${e.blockedURI || "inline"} ${e.sample || ""} at ${e.sourceFile}:${e.lineNumber}`);
});
"""


class Watched:
    """A browser context whose pages record every CSP violation they see."""

    def __init__(self, ctx: BrowserContext) -> None:
        self.ctx = ctx
        self.console: list[str] = []
        ctx.add_init_script(RECORD_VIOLATIONS)

    def page(self) -> Page:
        page = self.ctx.new_page()
        page.on("console", lambda msg: self.console.append(msg.text) if "Content Security Policy" in msg.text else None)
        return page

    def assert_clean(self, page: Page, what: str) -> None:
        page.wait_for_timeout(300)  # violations are reported asynchronously
        seen = page.evaluate("window.__csp")
        assert seen == [] and self.console == [], f"{what}: {seen + self.console}"


@pytest.fixture
def watched(browser: Any) -> Iterator[Any]:
    contexts: list[BrowserContext] = []

    def make(*init_scripts: str) -> Watched:
        ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(ctx)
        for script in init_scripts:
            ctx.add_init_script(script)
        return Watched(ctx)

    yield make
    for ctx in contexts:
        ctx.close()


def _visit(w: Watched, page: Page, url: str, what: str) -> None:
    resp = page.goto(url)
    assert resp is not None and resp.ok, (what, resp and resp.status)
    assert "default-src 'self'" in (resp.headers.get("content-security-policy") or ""), what
    page.wait_for_load_state("networkidle")
    w.assert_clean(page, what)


def _start_session(alice_ctx: BrowserContext, alice: Page, bob_ctx: BrowserContext, bob: Page, base: str) -> str:
    _csrf_cookie(alice, base)
    _csrf_cookie(bob, base)
    alice.get_by_label("Namespace", exact=True).select_option("default")
    pod = alice.locator("#id_pod option[value^=distroless-nginx-]")
    expect(pod).to_have_count(1)
    req = _api(alice_ctx, alice, base, "/api/v1/requests", {
        "namespace": "default", "pod": pod.get_attribute("value"), "container": "distroless-nginx-ctr",
        "image": "busybox", "profile": "general", "reason": "csp test", "duration_minutes": 15,
    })
    _api(bob_ctx, bob, base, f"/api/v1/requests/{req['id']}/approve", {"comment": "ok"})
    for _ in range(100):
        session = alice.request.get(f"{base}/api/v1/requests/{req['id']}").json().get("session") or {}
        if session.get("id"):
            return str(session["id"])
        alice.wait_for_timeout(200)
    raise AssertionError("no session was made")


def _use_terminal(page: Page) -> None:
    expect(page.locator("#session-status")).to_have_attribute("data-status", "running", timeout=40000)
    expect(page.locator("#terminal-banner")).to_contain_text("recorded", timeout=15000)
    page.locator("#terminal .xterm").click()
    page.keyboard.type("echo csp-$((6*7))\n")


def test_no_page_violates_the_policy(watched: Any, portal_url: str) -> None:
    alice_w, bob_w, dave_w, admin_w = watched(NO_WEBGL), watched(), watched(), watched()
    alice, bob, dave, admin = (w.page() for w in (alice_w, bob_w, dave_w, admin_w))

    _visit(alice_w, alice, f"{portal_url}/login/", "login page")
    for page, name in ((alice, "alice"), (bob, "bob"), (dave, "dave"), (admin, "admin")):
        login(page, portal_url, name)
    _visit(alice_w, alice, f"{portal_url}/", "home")
    _visit(alice_w, alice, f"{portal_url}/requests/new", "request form")
    expect(alice.locator("#id_namespace option[value=default]")).to_have_count(1)
    _visit(bob_w, bob, f"{portal_url}/approvals/", "approvals queue")
    expect(bob.locator("#live-state")).to_have_attribute("data-state", "live")

    session_id = _start_session(alice_w.ctx, alice, bob_w.ctx, bob, portal_url)
    session_url = f"{portal_url}/sessions/{session_id}/"

    # The terminal with xterm's DOM renderer (no WebGL: the renderer that writes styles).
    _visit(alice_w, alice, session_url, "terminal page (DOM renderer)")
    _use_terminal(alice)
    wait_for_terminal_text(alice, r"csp-42")
    alice_w.assert_clean(alice, "terminal in use (DOM renderer)")
    # The rows are laid out by xterm's own stylesheet: it applied (it would be blocked otherwise).
    assert alice.locator("#terminal .xterm-rows > div").first.evaluate("e => getComputedStyle(e).overflow") == "hidden"

    # The live view, and the request page that follows the request.
    _visit(bob_w, bob, f"{portal_url}/sessions/{session_id}/watch", "live view")
    expect(bob.locator("#watch-banner")).not_to_have_text("Connecting…", timeout=10000)
    bob_w.assert_clean(bob, "live view connected")

    # The same terminal where WebGL is there (alice's DOM-renderer page closes first).
    alice.close()
    webgl_w = watched()
    alice2 = webgl_w.page()
    login(alice2, portal_url, "alice")
    _visit(webgl_w, alice2, session_url, "terminal page (WebGL)")
    _use_terminal(alice2)
    alice2.wait_for_timeout(1500)
    webgl_w.assert_clean(alice2, "terminal in use (WebGL)")
    _csrf_cookie(alice2, portal_url)
    _api(webgl_w.ctx, alice2, portal_url, f"/api/v1/sessions/{session_id}/end", {})

    # The replay, played.
    _visit(dave_w, dave, session_url, "replay page")
    expect(dave.locator("#replay .ap-player")).to_be_visible(timeout=15000)
    dave.locator("#replay .ap-player").click()
    expect(dave.locator("#replay .ap-term")).to_contain_text("csp-42", timeout=15000)
    dave_w.assert_clean(dave, "replay played")
    _visit(dave_w, dave, f"{portal_url}/sessions/history/", "session history")

    # Admin pages, and the admin.
    _visit(admin_w, admin, f"{portal_url}/sessions/oversight/", "oversight")
    _visit(admin_w, admin, f"{portal_url}/admin/", "admin index")
    _visit(admin_w, admin, f"{portal_url}/admin/portal/auditevent/", "admin audit list")
    admin.locator("#result_list tbody th a").first.click()
    admin.wait_for_load_state("networkidle")
    expect(admin).to_have_url(re.compile(r"/admin/portal/auditevent/\d+/change/$"))
    admin_w.assert_clean(admin, "admin audit event")
    _visit(admin_w, admin, f"{portal_url}/admin/auth/user/", "admin users")
    _visit(admin_w, admin, f"{portal_url}/admin/auth/user/add/", "admin add user")
    admin.goto(f"{portal_url}/admin/auth/user/")
    admin.locator("#result_list tbody th a").first.click()
    admin.wait_for_load_state("networkidle")
    expect(admin).to_have_url(re.compile(r"/admin/auth/user/\d+/change/$"))
    admin_w.assert_clean(admin, "admin user change form")


def test_an_injected_script_does_not_run(watched: Any, portal_url: str) -> None:
    w = watched()
    page = w.page()
    page.goto(f"{portal_url}/login/")
    page.evaluate(
        """() => {
          const s = document.createElement("script");
          s.textContent = "window.__pwned = true";
          document.body.append(s);
          const img = document.createElement("img");
          img.setAttribute("onerror", "window.__pwned = true");
          img.src = "data:,nope";
          document.body.append(img);
          const st = document.createElement("style");
          st.textContent = "body { display: none }";
          document.head.append(st);
        }"""
    )
    page.wait_for_timeout(500)
    assert page.evaluate("window.__pwned") is None
    assert page.evaluate("getComputedStyle(document.body).display") != "none"
    kinds = {v.split(" ")[0] for v in page.evaluate("window.__csp")}
    assert {"script-src-elem", "script-src-attr", "style-src-elem"} <= kinds, kinds
