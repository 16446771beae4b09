"""The request form's live policy preview (issue 11), in a real browser on a portal running
tests/browser/policy.yaml: as alice fills the form, the rule that would apply is shown, a
refusal is shown next to its field (a missing ticket, a Pod Security refusal from the cluster's
dry run), and a submit then creates the request under the rule the preview named."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import REPO
from tests.browser.session_helpers import people
from tests.browser.test_csp import RECORD_VIOLATIONS

pytestmark = pytest.mark.browser

_KUBECTL = REPO / ".venv" / "bin" / "kubectl"


def _kubectl(env: dict[str, str], *args: str) -> None:
    done = subprocess.run([str(_KUBECTL), "--kubeconfig", env["KUBECONFIG"], *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def _choose_pod(page: Page, namespace: str, prefix: str) -> str:
    page.get_by_label("Namespace", exact=True).select_option(namespace)
    option = page.locator(f'#id_pod option[value^="{prefix}"]')
    expect(option).to_have_count(1)
    pod = str(option.get_attribute("value"))
    page.get_by_label("Pod", exact=True).select_option(pod)
    return pod


def test_the_form_shows_the_rule_as_alice_types_and_a_submit_creates_the_request(
    browser: Any, policy_portal_url: str, policy_portal_env: dict[str, str]
) -> None:
    base = policy_portal_url
    with people(browser, base, "alice") as who:
        ctx, alice = who["alice"]
        ctx.add_init_script(RECORD_VIOLATIONS)
        previews: list[str] = []
        alice.on("request", lambda r: previews.append(r.method) if r.url.endswith("/api/v1/requests/preview") else None)
        alice.goto(f"{base}/requests/new")
        preview = alice.locator("#policy-preview")
        # Nothing chosen yet: no "Choose a pod." under fields nobody has reached.
        expect(preview).to_have_attribute("data-state", "incomplete")
        expect(preview).to_contain_text("Choose what to debug")
        expect(alice.locator("#err_pod")).to_have_count(0)

        _choose_pod(alice, "default", "distroless-nginx-")
        expect(alice.get_by_label("Target container", exact=True)).to_have_value("distroless-nginx-ctr")
        expect(preview).to_have_attribute("data-state", "ok")
        expect(preview).to_contain_text("rule default: 1 approver from approvers, at most 120 minutes")

        alice.get_by_label("sysadmin").check()
        expect(preview).to_contain_text("rule sysadmin: 2 approvers from approvers, at most 30 minutes")

        # Typing is debounced: one preview for a burst of keys, not one per key.
        duration = alice.get_by_label("Duration (minutes)")
        duration.fill("")
        alice.wait_for_timeout(400)
        sent = len(previews)
        duration.press_sequentially("45", delay=40)
        expect(preview).to_have_attribute("data-state", "refused")
        expect(alice.locator("#err_duration_minutes")).to_contain_text("between 1 and 30 minutes (rule sysadmin)")
        assert len(previews) - sent == 1, previews
        duration.fill("20")
        expect(preview).to_have_attribute("data-state", "ok")
        expect(alice.locator("#err_duration_minutes")).to_have_count(0)

        # payments: its rule wants a ticket; the preview says so next to the ticket field.
        alice.get_by_label("general").check()
        _choose_pod(alice, "payments", "payments-api-")
        alice.get_by_label("Target container", exact=True).select_option("api")
        expect(alice.locator("#err_ticket")).to_have_text("Rule payments: A ticket is required.")
        expect(preview).to_have_attribute("data-state", "refused")
        expect(preview).to_contain_text("Rule payments: A ticket is required.")
        expect(alice.get_by_label("Ticket")).to_have_attribute("aria-invalid", "true")

        alice.get_by_label("Ticket").fill("JIRA-9")
        expect(alice.locator("#err_ticket")).to_contain_text("must match ^(INC|CHG)-[0-9]+$")
        alice.get_by_label("Ticket").fill("INC-7")
        expect(preview).to_contain_text("rule payments: 1 approver from payments-oncall, at most 120 minutes, ticket required")
        expect(alice.locator("#err_ticket")).to_have_count(0)

        # The cluster's own word: payments now enforces baseline, and the dry run refuses sysadmin.
        _kubectl(policy_portal_env, "label", "namespace", "payments", "pod-security.kubernetes.io/enforce=baseline")
        try:
            alice.get_by_label("sysadmin").check()
            expect(alice.locator("#err_profile")).to_contain_text(
                "namespace payments enforces Pod Security baseline: profile sysadmin is not allowed; try"
            )
            expect(preview).to_have_attribute("data-state", "refused")
            alice.get_by_label("baseline", exact=True).check()
            expect(preview).to_have_attribute("data-state", "ok")
            expect(alice.locator("#err_profile")).to_have_count(0)
            expect(preview).to_contain_text("rule payments")

            alice.get_by_label("Reason", exact=True).fill("payments-api answers 502 since the deploy")
            alice.get_by_role("button", name="Request access").click()
            expect(alice).to_have_url(re.compile(r"/requests/[0-9a-f-]{36}/$"), timeout=15000)
        finally:
            _kubectl(policy_portal_env, "label", "namespace", "payments", "pod-security.kubernetes.io/enforce-")
        expect(alice.get_by_text("sent to the approvers")).to_be_visible()
        facts = alice.locator(".facts")
        expect(facts).to_contain_text("payments")
        expect(facts).to_contain_text("0 of 1 approval")
        expect(facts).to_contain_text("INC-7")
        expect(facts).to_contain_text("payments-oncall")
        expect(facts.locator(".risk")).to_have_attribute("data-risk", "low")
        assert set(previews) == {"POST"}
        assert alice.evaluate("window.__csp") == []


def test_the_preview_says_when_it_cannot_answer(browser: Any, policy_portal_url: str) -> None:
    base = policy_portal_url
    with people(browser, base, "alice") as who:
        ctx, alice = who["alice"]
        alice.goto(f"{base}/requests/new")
        _choose_pod(alice, "default", "distroless-nginx-")
        expect(alice.locator("#policy-preview")).to_have_attribute("data-state", "ok")
        # The portal unreachable for the preview: it says so instead of showing a stale rule.
        ctx.route("**/api/v1/requests/preview", lambda route: route.abort())
        alice.get_by_label("netadmin").check()
        expect(alice.locator("#policy-preview")).to_have_attribute("data-state", "unavailable")
        expect(alice.locator("#policy-preview")).to_contain_text("still checked when you send it")
