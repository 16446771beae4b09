"""The "Commands typed" list shows every number whole (issue 9, bug 7): from 10 on the list
markers were clipped to ".0", ".1" by the list's own scroll box."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.session_helpers import api, approved_session, open_terminal, people
from tests.browser.test_request_approve_debug import wait_for_terminal_text

pytestmark = pytest.mark.browser

COMMANDS = 12


def test_the_command_list_numbers_from_ten_on_are_not_clipped(browser: Any, portal_url: str) -> None:
    with people(browser, portal_url, "alice", "bob", "dave") as who:
        session_id = approved_session(who["alice"], who["bob"], portal_url, reason="many commands")
        alice, dave = who["alice"][1], who["dave"][1]
        open_terminal(alice, portal_url, session_id)
        for n in range(1, COMMANDS + 1):
            alice.keyboard.type(f"echo c{n}-$(({n}*11))\n")
            wait_for_terminal_text(alice, rf"c{n}-{n * 11}")
        alice.wait_for_timeout(1200)  # at least one flush of the recorder
        api(who["alice"], portal_url, f"/api/v1/sessions/{session_id}/end", {})

        dave.goto(f"{portal_url}/sessions/{session_id}/")
        items = dave.locator("#command-list li")
        expect(items).to_have_count(COMMANDS)
        expect(items.nth(9)).to_contain_text("echo c10-$((10*11))")
        listbox = dave.locator("#command-list").bounding_box()
        assert listbox is not None
        for index in (0, 9, COMMANDS - 1):
            number = items.nth(index).locator(".command-number")
            expect(number).to_have_text(f"{index + 1}.")
            box = number.bounding_box()
            # Whole, inside the list's visible box: nothing of it is cut off on the left.
            assert box is not None and box["x"] >= listbox["x"] and box["x"] + box["width"] <= listbox["x"] + listbox["width"], (
                index,
                box,
                listbox,
            )
