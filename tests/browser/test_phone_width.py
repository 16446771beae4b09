"""Phone width (390 px, an iPhone's): no page scrolls sideways, for every role, with real rows
in the tables (a request, a session, its history). And the dark theme: the pages follow the
system's setting."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.session_helpers import approved_session, pending_request, people

pytestmark = pytest.mark.browser

PHONE = 390


def _overflow(page: Any) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


def test_no_page_scrolls_sideways_on_a_phone(browser: Any, portal_url: str) -> None:
    base = portal_url
    with people(browser, base, "alice", "bob", "dave", "admin", width=PHONE) as who:
        pending_request(who["alice"], base, reason="a phone-width request with a reason long enough to wrap " * 2)
        session_id = approved_session(who["alice"], who["bob"], base, reason="phone width session")
        pages = {
            "alice": ["/", "/requests/new", "/profile/", f"/sessions/{session_id}/"],
            "bob": ["/approvals/", "/sessions/running/", "/profile/"],
            "dave": ["/sessions/history/", f"/sessions/{session_id}/", "/sessions/history/?q=echo"],
            "admin": ["/sessions/oversight/", "/tokens/", "/api/docs/"],
        }
        wide: list[str] = []
        for name, paths in pages.items():
            page = who[name][1]
            for path in paths:
                page.goto(f"{base}{path}")
                page.wait_for_load_state("networkidle")
                if _overflow(page) > 0:
                    wide.append(f"{name} {path}: {_overflow(page)} px too wide")
        assert wide == [], "\n".join(wide)


def test_the_pages_follow_the_systems_dark_setting(browser: Any, portal_url: str) -> None:
    for scheme, background in (("light", "rgb(246, 247, 249)"), ("dark", "rgb(13, 17, 23)")):
        ctx = browser.new_context(color_scheme=scheme)
        try:
            page = ctx.new_page()
            page.goto(f"{portal_url}/login/")
            assert page.evaluate("getComputedStyle(document.body).backgroundColor") == background
            card = page.evaluate("getComputedStyle(document.querySelector('.card')).color")
            assert card == ("rgb(27, 31, 36)" if scheme == "light" else "rgb(230, 237, 243)")
        finally:
            ctx.close()
