"""/api/docs/ in Chromium: Swagger UI from our own static files lists the API, with no request
leaving the portal and no Content-Security-Policy violation."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.test_csp import RECORD_VIOLATIONS
from tests.browser.test_request_approve_debug import login

pytestmark = pytest.mark.browser


def test_the_api_reference_renders_from_our_own_files(browser: Any, portal_url: str) -> None:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    ctx.add_init_script(RECORD_VIOLATIONS)
    page = ctx.new_page()
    elsewhere: list[str] = []
    page.on("request", lambda r: elsewhere.append(r.url) if not r.url.startswith((portal_url, "data:")) else None)
    try:
        login(page, portal_url, "alice")
        resp = page.goto(f"{portal_url}/api/docs/")
        assert resp is not None and resp.ok
        expect(page.get_by_text("/api/v1/requests/{id}/approve").first).to_be_visible(timeout=20000)
        expect(page.locator(".swagger-ui .title").first).to_contain_text("Ephemera API")
        page.wait_for_load_state("networkidle")
        assert elsewhere == []
        assert page.evaluate("window.__csp") == []
        # An operation opens with its "Try it out": the reference can call the real API.
        page.locator(".opblock-summary-path", has_text="/api/v1/requests/preview").first.click()
        expect(page.get_by_role("button", name="Try it out").first).to_be_visible()
    finally:
        ctx.close()
