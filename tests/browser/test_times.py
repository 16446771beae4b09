"""One time format everywhere: the reader's time zone, named, and how far off where it helps."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.session_helpers import pending_request, people
from tests.browser.test_replay import _csrf_cookie
from tests.browser.test_request_approve_debug import login

pytestmark = pytest.mark.browser


def test_times_are_in_the_readers_zone_with_the_zone_named(browser: Any, portal_url: str) -> None:
    with people(browser, portal_url, "alice") as who:
        req_id = pending_request(who["alice"], portal_url, reason="times in the reader's zone")
    ctx = browser.new_context(timezone_id="Asia/Kolkata", locale="en-US")
    try:
        page = ctx.new_page()
        login(page, portal_url, "alice")
        _csrf_cookie(page, portal_url)
        page.goto(f"{portal_url}/requests/{req_id}/")
        asked = page.locator("time").first
        text = asked.inner_text()
        assert "GMT+5:30" in text, text  # India: the zone named, not UTC
        assert re.search(r"(now|minute|min)", text), text  # just asked: how long ago
        assert asked.get_attribute("title", timeout=1000).endswith("UTC")  # the UTC time kept on hover
        expires = page.locator("dd", has_text="if undecided").locator("time").inner_text()
        assert "in " in expires and "GMT+5:30" in expires, expires  # an expiry: how far off
    finally:
        ctx.close()
