"""The session page's Files panel (issue 15): alice downloads a file of the distroless target
and uploads one into her debug container; errors are said in the panel; dave, the auditor,
sees what moved with its sha256 and can fetch the bytes that left."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from kubesim.runtime.rootfs import NGINX_CONF
from tests.browser.session_helpers import approved_session, open_terminal, people
from tests.browser.test_request_approve_debug import wait_for_terminal_text

pytestmark = pytest.mark.browser


def test_download_and_upload_from_the_session_page(browser: Any, policy_portal_url: str, tmp_path: Path) -> None:
    # The portal whose policy (tests/browser/policy.yaml) allows uploads under its default rule.
    portal_url = policy_portal_url
    with people(browser, portal_url, "alice", "bob", "dave") as who:
        session_id = approved_session(who["alice"], who["bob"], portal_url, reason="files panel")
        alice, dave = who["alice"][1], who["dave"][1]
        open_terminal(alice, portal_url, session_id)
        csp: list[str] = []
        alice.on("console", lambda m: csp.append(m.text) if "Content Security Policy" in m.text else None)

        # A file of the distroless target, byte for byte.
        alice.fill("#files-download-path", "/etc/nginx/nginx.conf")
        with alice.expect_download() as caught:
            alice.click("#files-download button")
        download = caught.value
        assert download.suggested_filename == "nginx.conf"
        saved = tmp_path / "nginx.conf"
        download.save_as(saved)
        assert saved.read_bytes() == NGINX_CONF.encode()
        expect(alice.locator("#files-result")).to_contain_text("Downloaded /etc/nginx/nginx.conf")

        # A path that isn't there: said in the panel, nothing downloaded.
        alice.fill("#files-download-path", "/etc/nginx/missing.conf")
        alice.click("#files-download button")
        expect(alice.locator("#files-result")).to_contain_text("No such file or directory")
        expect(alice.locator("#files-result")).to_have_attribute("data-kind", "error")

        # Upload into the debug container, then read it in the shell.
        alice.set_input_files("#files-upload-file", files=[{"name": "probe.sh", "mimeType": "text/x-sh",
                                                             "buffer": b"echo probe-$((6*7))\n"}])
        alice.click("#files-upload button")
        expect(alice.locator("#files-result")).to_contain_text("Uploaded to /tmp/probe.sh")
        alice.locator("#terminal .xterm").click()
        alice.keyboard.type("sh /tmp/probe.sh\n")
        wait_for_terminal_text(alice, r"probe-42")
        assert csp == []

        # dave sees what moved, with its hash, and fetches the bytes that left.
        digest = hashlib.sha256(NGINX_CONF.encode()).hexdigest()
        dave.goto(f"{portal_url}/sessions/{session_id}/")
        rows = dave.locator("#files-transfers li")
        expect(rows.filter(has_text="/etc/nginx/nginx.conf").filter(has_text="Done")).to_contain_text(digest)
        expect(rows.filter(has_text="/tmp/probe.sh")).to_contain_text("Done")
        expect(dave.locator("#files-download")).to_have_count(0)  # only the requester moves files
        link = rows.filter(has_text=digest).get_by_role("link", name="the bytes that left")
        content = dave.request.get(portal_url + str(link.get_attribute("href")))
        assert content.ok and content.body() == NGINX_CONF.encode()
        assert re.search(r"nginx\.conf", content.headers["content-disposition"])
