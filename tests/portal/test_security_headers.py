"""Security headers: the Content-Security-Policy on every HTML page, and templates it can hold to.

(tests/browser/test_csp.py checks in Chromium that no page breaks under the policy.)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = sorted(p for app in ("portal", "approvals", "sessions") for p in (ROOT / app / "templates").rglob("*.html"))


def _csp(resp: Any) -> dict[str, str]:
    header = resp["Content-Security-Policy"]
    return {d.split(" ", 1)[0]: d.split(" ", 1)[1] if " " in d else "" for d in (x.strip() for x in header.split(";"))}


def test_a_page_gets_the_policy(db: Any) -> None:
    csp = _csp(Client().get("/login/"))
    assert csp["default-src"] == "'self'"
    assert csp["script-src"] == "'self' 'wasm-unsafe-eval'"
    assert re.fullmatch(r"'self' 'nonce-[A-Za-z0-9_-]{24}'", csp["style-src"])
    assert csp["img-src"] == "'self' data:"
    assert csp["connect-src"] == "'self' ws://testserver"
    assert csp["frame-ancestors"] == "'none'" and csp["base-uri"] == "'none'"
    assert csp["form-action"] == "'self'" and csp["object-src"] == "'none'"
    assert "unsafe-inline" not in Client().get("/login/")["Content-Security-Policy"]


def test_the_style_nonce_is_new_each_time_and_on_the_stylesheet_link(db: Any) -> None:
    first, second = Client().get("/login/"), Client().get("/login/")
    nonces = [re.search(r"'nonce-([^']+)'", r["Content-Security-Policy"]).group(1) for r in (first, second)]  # type: ignore[union-attr]
    assert nonces[0] != nonces[1]
    assert f'href="/static/ephemera/app.css" nonce="{nonces[0]}"' in first.content.decode()


def test_over_tls_the_websocket_origin_is_wss(db: Any, settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["ephemera.example.com"]
    resp = Client().get("/login/", secure=True, HTTP_HOST="ephemera.example.com")
    assert _csp(resp)["connect-src"] == "'self' wss://ephemera.example.com"


def test_the_admin_gets_the_policy_too(admin_user: User) -> None:
    client = Client()
    client.force_login(admin_user)
    resp = client.get("/admin/portal/auditevent/")
    assert resp.status_code == 200
    assert _csp(resp)["script-src"] == "'self' 'wasm-unsafe-eval'"


def test_the_bad_host_page_gets_the_policy(db: Any) -> None:
    resp = Client().get("/login/", HTTP_HOST="evil.example")
    assert resp.status_code == 400
    assert _csp(resp)["connect-src"] == "'self'"


def test_json_answers_carry_no_page_policy(db: Any) -> None:
    assert "Content-Security-Policy" not in Client().get("/healthz")


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_template_has_inline_script_or_style(template: Path) -> None:
    # Template comments ({# #}, {% comment %}) never reach the browser.
    text = re.sub(r"\{#.*?#\}|\{% comment %\}.*?\{% endcomment %\}", "", template.read_text(), flags=re.S)
    assert not re.search(r"<style\b", text, re.I), "a <style> block: move it to frontend/src/styles/app.css"
    assert not re.search(r"\sstyle\s*=", text, re.I), "a style= attribute: use a CSS class"
    assert not re.search(r"\son[a-z]+\s*=", text, re.I), "an inline event handler: attach it in frontend/src"
    for tag in re.findall(r"<script\b[^>]*>", text, re.I):
        assert re.search(r"\ssrc=", tag) or 'type="application/json"' in tag, f"an inline script: {tag}"
