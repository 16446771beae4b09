"""Single sign-on in a real browser: Chromium goes from the portal's sign-in page to a real
OpenID provider (node-oidc-provider) and back, signed in with the provider's groups; then a
re-authentication, where the provider asks for the password again (prompt=login)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import _free_port, _running_portal
from tests.browser.test_request_approve_debug import SCREENSHOTS
from tests.sso.idp import CLIENT_ID, CLIENT_SECRET, IDP_PASSWORD, RealIdP

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def sso_portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, RealIdP]]:
    tmp = Path(tmp_path_factory.mktemp("sso-portal"))
    port = _free_port()
    idp = RealIdP(tmp, [f"http://127.0.0.1:{port}/oidc/callback/"]).start()
    idp.add("pat", groups=["approvers", "payments-oncall"], name="Pat Example")
    env = {"OIDC_ISSUER": idp.issuer, "OIDC_CLIENT_ID": CLIENT_ID, "OIDC_CLIENT_SECRET": CLIENT_SECRET,
           "OIDC_PROVIDER_NAME": "Test IdP"}
    try:
        with _running_portal(tmp, {}, env, port=port) as url:
            yield url, idp
    finally:
        idp.stop()


def _sign_in_at_idp(page: Any) -> None:
    expect(page.get_by_role("heading", name="Sign in to the test IdP")).to_be_visible()
    page.get_by_label("Login").fill("pat")
    page.get_by_label("Password").fill(IDP_PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_sign_in_with_the_provider_and_sign_in_again(browser: Any, sso_portal: tuple[str, RealIdP]) -> None:
    url, idp = sso_portal
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    try:
        page.goto(f"{url}/approvals/")  # a page that needs a sign-in: back here afterwards
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "sso-login.png"))
        page.get_by_role("link", name="Sign in with Test IdP").click()
        assert page.url.startswith(idp.issuer)
        _sign_in_at_idp(page)
        expect(page.get_by_text("Signed in as pat")).to_be_visible()
        assert page.url == f"{url}/approvals/"
        # An approver through the IdP's group: the approvals queue is theirs.
        expect(page.get_by_role("heading", name="Pending requests")).to_be_visible()

        # Re-authentication: the provider asks again though pat is signed in there.
        page.goto(f"{url}/reauth/?next=/profile/")
        _sign_in_at_idp(page)
        expect(page.get_by_text("You signed in again.")).to_be_visible()
        assert page.url == f"{url}/profile/"
        page.screenshot(path=str(SCREENSHOTS / "profile.png"), full_page=True)
    finally:
        ctx.close()
