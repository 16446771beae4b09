"""A real browser's approvals queue on replica B shows, without a reload, a request made through A."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.test_request_approve_debug import login
from tests.scale.clients import api, ask, nginx_pod

pytestmark = pytest.mark.browser


def test_the_queue_in_a_browser_on_b_shows_a_request_made_through_a(deployment: Any, chromium: Any) -> None:
    a, b = deployment.urls["a"], deployment.urls["b"]
    alice = deployment.manage("create_api_token", "alice", "--name", "scale-browser")
    ctx = chromium.new_context(viewport={"width": 1280, "height": 900})
    req = ""
    try:
        page = ctx.new_page()
        login(page, b, "bob")
        page.goto(f"{b}/approvals/")
        expect(page.locator("#live-state")).to_have_attribute("data-state", "live")
        req = ask(a, alice, pod=nginx_pod(deployment), reason="scale: seen in a browser on the other replica")
        expect(page.locator(f'.queue-item[data-request-id="{req}"]')).to_be_visible(timeout=10000)
        expect(page.locator(f'.queue-item[data-request-id="{req}"]')).to_contain_text("seen in a browser on the other replica")
    finally:
        ctx.close()
        if req:
            api(a, alice, "POST", f"/api/v1/requests/{req}/cancel")
