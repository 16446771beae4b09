"""Shared steps of the session-page browser tests: people in their own browser contexts, a
session made for real (alice's request and bob's approval through the JSON API, with their
browser sessions), alice's open terminal, and one reaper pass as `make run` runs it."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.conftest import REPO
from tests.browser.test_replay import NO_WEBGL, _api, _csrf_cookie
from tests.browser.test_request_approve_debug import PROMPT, login, wait_for_terminal_text


@contextmanager
def people(browser: Browser, base: str, *names: str, width: int = 1280) -> Iterator[dict[str, tuple[BrowserContext, Page]]]:
    """Each name signed in in a browser context of its own; WebGL hidden, so the terminal's
    DOM renderer can be read as text."""
    contexts: dict[str, tuple[BrowserContext, Page]] = {}
    try:
        for name in names:
            ctx = browser.new_context(viewport={"width": width, "height": 900})
            ctx.add_init_script(NO_WEBGL)
            page = ctx.new_page()
            login(page, base, name)
            _csrf_cookie(page, base)
            contexts[name] = (ctx, page)
        yield contexts
    finally:
        for ctx, _ in contexts.values():
            ctx.close()


def api(who: tuple[BrowserContext, Page], base: str, path: str, data: dict[str, Any]) -> dict[str, Any]:
    return _api(who[0], who[1], base, path, data)


def nginx_pod(page: Page, base: str) -> str:
    resp = page.request.get(f"{base}/cluster/namespaces/default/pods")
    assert resp.ok, resp.status
    return next(p for p in resp.json()["items"] if p.startswith("distroless-nginx-"))


def pending_request(alice: tuple[BrowserContext, Page], base: str, *, reason: str, minutes: int = 15) -> str:
    """alice asks for a general-profile shell on the nginx pod; the request's id."""
    req = api(
        alice,
        base,
        "/api/v1/requests",
        {
            "namespace": "default",
            "pod": nginx_pod(alice[1], base),
            "container": "distroless-nginx-ctr",
            "image": "busybox",
            "profile": "general",
            "reason": reason,
            "duration_minutes": minutes,
        },
    )
    return str(req["id"])


def approved_session(
    alice: tuple[BrowserContext, Page], bob: tuple[BrowserContext, Page], base: str, *, reason: str, minutes: int = 15
) -> str:
    """alice asks for a shell on the nginx pod, bob approves; the session's id once it exists."""
    req = {"id": pending_request(alice, base, reason=reason, minutes=minutes)}
    api(bob, base, f"/api/v1/requests/{req['id']}/approve", {"comment": "fine"})
    page = alice[1]
    for _ in range(150):
        session = page.request.get(f"{base}/api/v1/requests/{req['id']}").json().get("session") or {}
        if session.get("id"):
            return str(session["id"])
        page.wait_for_timeout(200)
    raise AssertionError("no session was made for the approved request")


def open_terminal(page: Page, base: str, session_id: str) -> None:
    """The requester's session page with the terminal attached and a prompt on screen."""
    page.goto(f"{base}/sessions/{session_id}/")
    expect(page.locator("#session-status")).to_have_attribute("data-status", "running", timeout=40000)
    wait_for_prompt(page)


def wait_for_prompt(page: Page) -> None:
    expect(page.locator("#terminal-banner")).to_contain_text(re.compile(r"Connected|Reattached"), timeout=15000)
    page.locator("#terminal .xterm").click()
    # Like kubectl: an attach joins a shell that printed its prompt before we were there.
    try:
        wait_for_terminal_text(page, PROMPT, timeout=5)
    except AssertionError:
        page.keyboard.press("Enter")
        wait_for_terminal_text(page, PROMPT, timeout=15)


def reap_until(portal_env: dict[str, str], page: Page, base: str, session_id: str, status: str, timeout: float = 30) -> None:
    """Reaper passes (`manage.py run_reaper --once`, what `make run` runs every 5 s) until the
    server says the session has `status`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        subprocess.run(
            [sys.executable, "manage.py", "run_reaper", "--once"],
            cwd=REPO,
            env=portal_env,
            check=True,
            capture_output=True,
            timeout=60,
        )
        if page.request.get(f"{base}/sessions/{session_id}/status.json").json()["status"] == status:
            return
        time.sleep(0.5)
    raise AssertionError(f"the reaper did not make session {session_id} {status} within {timeout}s")
