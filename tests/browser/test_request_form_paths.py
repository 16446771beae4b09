"""The request form's other paths in a real browser (issue 9, bugs 1 and 8): a node request
from the form to a terminal on the node, and a form sent back with an error keeps the pod it
was submitted with."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import REPO
from tests.browser.session_helpers import people, wait_for_prompt
from tests.browser.test_request_approve_debug import wait_for_terminal_text

pytestmark = pytest.mark.browser

_KUBECTL = REPO / ".venv" / "bin" / "kubectl"


def test_a_node_request_goes_from_the_form_to_a_terminal_on_the_node(browser: Any, portal_url: str) -> None:
    with people(browser, portal_url, "alice", "bob") as who:
        alice, bob = who["alice"][1], who["bob"][1]
        alice.goto(f"{portal_url}/requests/new")
        errors: list[str] = []
        alice.on("console", lambda msg: errors.append(msg.text) if "invalid form control" in msg.text else None)
        alice.get_by_label("Node (node-debugger pod)").check()
        alice.get_by_label("Node", exact=True).select_option("debian-11")
        alice.get_by_label("Reason", exact=True).fill("kubelet on debian-11 keeps restarting")
        alice.get_by_role("button", name="Request access").click()
        # Before the fix the hidden pod selects were `required`: the click did nothing.
        expect(alice).to_have_url(re.compile(r"/requests/[0-9a-f-]{36}/$"), timeout=10000)
        assert errors == [], errors
        expect(alice.get_by_text("sent to the approvers")).to_be_visible()
        expect(alice.locator(".facts")).to_contain_text("debian-11")
        request_url = alice.url

        bob.goto(request_url)
        bob.get_by_label(re.compile("^Comment")).fill("ok, look at the kubelet")
        bob.get_by_role("button", name="Approve").click()

        # Her request page takes her to the terminal once the node-debugger pod runs.
        expect(alice).to_have_url(re.compile(r"/sessions/[0-9a-f-]{36}/$"), timeout=40000)
        expect(alice.locator("#session-status")).to_have_attribute("data-status", "running", timeout=40000)
        expect(alice.locator("#node-profile-help")).to_be_visible()
        wait_for_prompt(alice)
        alice.keyboard.type("echo node-$((40+2))\n")
        wait_for_terminal_text(alice, r"node-42")


def _kubectl(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([str(_KUBECTL), "--kubeconfig", env["KUBECONFIG"], *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_form_sent_back_with_an_error_keeps_the_submitted_pod(
    browser: Any, portal_url: str, portal_env: dict[str, str]
) -> None:
    # A pod of this test's own next to the demo's nginx pod: alice picks it, it is gone by the
    # time she submits (a deployment replaced it, say). The error names that pod; the form
    # must not then quietly pick the only pod left (nginx) for the resubmit.
    pod = "form-error-web-1"
    _kubectl(portal_env, "-n", "default", "run", pod, "--image=busybox", "--restart=Never", "--command", "--", "sleep", "3600")
    try:
        with people(browser, portal_url, "alice") as who:
            alice = who["alice"][1]
            alice.goto(f"{portal_url}/requests/new")
            alice.get_by_label("Namespace", exact=True).select_option("default")
            expect(alice.locator(f"#id_pod option[value={pod}]")).to_have_count(1)
            alice.get_by_label("Pod", exact=True).select_option(pod)
            expect(alice.get_by_label("Target container", exact=True)).to_have_value(pod)
            alice.get_by_label("Reason", exact=True).fill("checking the web pod")
            _kubectl(portal_env, "-n", "default", "delete", "pod", pod, "--wait=true")
            alice.get_by_role("button", name="Request access").click()

            expect(alice.locator("#err_pod")).to_contain_text(f"Pod default/{pod} does not exist.")
            # The live lists are loaded again (the nginx pod is offered) ...
            expect(alice.locator("#id_pod option[value^=distroless-nginx-]")).to_have_count(1)
            alice.wait_for_load_state("networkidle")
            # ... and what was submitted is still what is chosen, marked as gone.
            expect(alice.get_by_label("Pod", exact=True)).to_have_value(pod)
            expect(alice.locator(f"#id_pod option[value={pod}]")).to_have_text(f"{pod} (not found in the cluster)")
            expect(alice.get_by_label("Target container", exact=True)).to_have_value(pod)
            expect(alice.get_by_label("Namespace", exact=True)).to_have_value("default")
    finally:
        subprocess.run(
            [
                str(_KUBECTL),
                "--kubeconfig",
                portal_env["KUBECONFIG"],
                "-n",
                "default",
                "delete",
                "pod",
                pod,
                "--ignore-not-found",
            ],
            capture_output=True,
            timeout=60,
        )
