"""The requester's request page goes straight to the live terminal once the approved session
runs (issue 9); an approver looking at the same request stays where they are."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.session_helpers import api, nginx_pod, people, wait_for_prompt

pytestmark = pytest.mark.browser


def test_the_requesters_page_opens_the_terminal_when_the_session_runs(browser: Any, portal_url: str) -> None:
    with people(browser, portal_url, "alice", "bob", "carol") as who:
        alice, carol = who["alice"][1], who["carol"][1]
        req = api(
            who["alice"],
            portal_url,
            "/api/v1/requests",
            {
                "namespace": "default",
                "pod": nginx_pod(alice, portal_url),
                "container": "distroless-nginx-ctr",
                "image": "busybox",
                "profile": "general",
                "reason": "waiting on the request page",
                "duration_minutes": 10,
            },
        )
        request_url = f"{portal_url}/requests/{req['id']}/"
        alice.goto(request_url)
        carol.goto(request_url)
        expect(alice.locator("#request-watch")).to_have_attribute("data-status", "pending")

        api(who["bob"], portal_url, f"/api/v1/requests/{req['id']}/approve", {"comment": "go"})
        expect(alice).to_have_url(re.compile(r"/sessions/[0-9a-f-]{36}/$"), timeout=40000)
        expect(alice.locator("#session-status")).to_have_attribute("data-status", "running")
        wait_for_prompt(alice)
        # Not the requester: carol's page shows the decision and stays on the request.
        expect(carol.locator("#session-card")).to_be_visible(timeout=15000)
        carol.wait_for_timeout(2500)
        assert carol.url == request_url
