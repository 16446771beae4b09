"""Production settings pass `manage.py check --deploy` clean; over TLS: redirect and HSTS.

check --deploy warned W004 (no HSTS) and W008 (no SSL redirect) with production settings.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from tests.portal.test_settings import ROOT, start


def _check_deploy(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("EPHEMERA_", "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ALLOWED_HOSTS", "CSRF_", "DEBUG", "KUBECONFIG", "DJANGO_SETTINGS_MODULE"))}
    production = {
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "ephemera.example.com",
        "CSRF_TRUSTED_ORIGINS": "https://ephemera.example.com",
        "EPHEMERA_VAR_DIR": str(tmp_path),
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env={**base, **production, **env}, capture_output=True, text=True, timeout=120,
    )


def test_production_behind_tls_passes_check_deploy_clean(tmp_path: Path) -> None:
    result = _check_deploy({"EPHEMERA_BEHIND_TLS_PROXY": "1"}, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout + result.stderr


def test_check_deploy_still_speaks_up_without_tls(tmp_path: Path) -> None:
    result = _check_deploy({}, tmp_path)
    assert result.returncode != 0
    assert "security.W004" in result.stderr and "security.W008" in result.stderr


def test_tls_is_on_behind_the_proxy_and_off_in_demo() -> None:
    probe = "SECURE_SSL_REDIRECT,SECURE_HSTS_SECONDS,SECURE_HSTS_INCLUDE_SUBDOMAINS"
    prod = start({"SECRET_KEY": "k" * 50, "ALLOWED_HOSTS": "e.example", "EPHEMERA_BEHIND_TLS_PROXY": "1"}, probe=probe)
    assert prod.returncode == 0, prod.stderr[-2000:]
    assert "'SECURE_SSL_REDIRECT': True, 'SECURE_HSTS_SECONDS': 31536000, 'SECURE_HSTS_INCLUDE_SUBDOMAINS': True" in prod.stdout
    demo = start({"EPHEMERA_DEMO": "1", "EPHEMERA_BEHIND_TLS_PROXY": "1"}, probe=probe)
    assert "'SECURE_SSL_REDIRECT': False, 'SECURE_HSTS_SECONDS': 0" in demo.stdout
    direct = start({"SECRET_KEY": "k" * 50, "ALLOWED_HOSTS": "e.example", "EPHEMERA_TLS": "1",
                    "EPHEMERA_HSTS_SECONDS": "600", "EPHEMERA_HSTS_INCLUDE_SUBDOMAINS": "0"}, probe=probe)
    assert "'SECURE_SSL_REDIRECT': True, 'SECURE_HSTS_SECONDS': 600, 'SECURE_HSTS_INCLUDE_SUBDOMAINS': False" in direct.stdout


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"EPHEMERA_TLS": "sometimes"}, "EPHEMERA_TLS='sometimes' is not a boolean"),
        ({"EPHEMERA_TLS": "1", "EPHEMERA_HSTS_SECONDS": "1y"}, "EPHEMERA_HSTS_SECONDS='1y' is not an integer"),
        ({"EPHEMERA_HSTS_PRELOAD": "2"}, "EPHEMERA_HSTS_PRELOAD='2' is not a boolean"),
    ],
)
def test_it_refuses_a_bad_tls_setting(env: dict[str, str], message: str) -> None:
    result = start({"EPHEMERA_DEMO": "1", **env})
    assert result.returncode != 0
    assert message in result.stderr, result.stderr[-2000:]


@pytest.fixture
def over_tls(settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["ephemera.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")


def test_plain_http_is_redirected_to_https(db: Any, over_tls: None) -> None:
    resp = Client(HTTP_HOST="ephemera.example.com").get("/login/")
    assert resp.status_code == 301 and resp["Location"] == "https://ephemera.example.com/login/"


def test_health_probes_are_answered_over_plain_http(db: Any, over_tls: None) -> None:
    resp = Client(HTTP_HOST="ephemera.example.com").get("/healthz")
    assert resp.status_code == 200 and resp.json() == {"status": "ok"}


def test_over_tls_pages_carry_hsts_and_the_other_headers(db: Any, over_tls: None) -> None:
    resp = Client(HTTP_HOST="ephemera.example.com").get("/login/", HTTP_X_FORWARDED_PROTO="https")
    assert resp.status_code == 200
    assert resp["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert resp["Referrer-Policy"] == "same-origin"
    assert resp["Cross-Origin-Opener-Policy"] == "same-origin"
    assert resp["X-Frame-Options"] == "DENY"
    assert resp["X-Content-Type-Options"] == "nosniff"
