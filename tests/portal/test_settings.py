"""Bad settings stop start-up with a message naming the setting; good ones are taken as given."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'portal.settings'); django.setup(); from django.conf import settings as s; print(repr({n: getattr(s, n) for n in os.environ['PROBE'].split(',')}))"


def start(env: dict[str, str], probe: str = "DEBUG") -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("EPHEMERA_", "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ALLOWED_HOSTS", "CSRF_", "DEBUG", "KUBECONFIG", "DJANGO_SETTINGS_MODULE"))}
    base["EPHEMERA_VAR_DIR"] = str(ROOT / "var" / "test-settings")
    return subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env={**base, "PROBE": probe, **env},
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "SECRET_KEY is required"),
        ({"SECRET_KEY": "x" * 50}, "ALLOWED_HOSTS is required"),
        ({"EPHEMERA_DEMO": "maybe"}, "EPHEMERA_DEMO='maybe' is not a boolean"),
        ({"EPHEMERA_DEMO": "1", "EPHEMERA_DEFAULT_DURATION_MINUTES": "ten"}, "EPHEMERA_DEFAULT_DURATION_MINUTES='ten' is not an integer"),
        # The policy settings moved into the policy file: each one still set is named, with what replaces it.
        ({"EPHEMERA_DEMO": "1", "EPHEMERA_APPROVALS_REQUIRED": "2"}, "EPHEMERA_APPROVALS_REQUIRED was removed: set `approvals:` on a rule"),
        ({"EPHEMERA_DEMO": "1", "EPHEMERA_DEBUG_IMAGES": "busybox"}, "EPHEMERA_DEBUG_IMAGES was removed: set `images:`"),
        ({"EPHEMERA_DEMO": "1", "EPHEMERA_MAX_DURATION_MINUTES": "60"}, "EPHEMERA_MAX_DURATION_MINUTES was removed"),
        ({"EPHEMERA_DEMO": "1", "EPHEMERA_AUTO_APPROVE_NAMESPACES": "dev"}, "EPHEMERA_AUTO_APPROVE_NAMESPACES was removed"),
        ({"EPHEMERA_DEMO": "1", "EPHEMERA_POLICY_FILE": "/nonexistent/policy.yaml"}, "EPHEMERA_POLICY_FILE /nonexistent/policy.yaml: cannot be read"),
        ({"EPHEMERA_DEMO": "1", "REDIS_URL": "http://cache:6379"}, "REDIS_URL must start with redis://"),
        ({"EPHEMERA_DEMO": "1", "DATABASE_URL": "nosuchdb://x"}, "DATABASE_URL cannot be parsed"),
        ({"EPHEMERA_DEMO": "1", "CSRF_TRUSTED_ORIGINS": "ephemera.example.com"}, "must start with http:// or https://"),
        ({"EPHEMERA_DEMO": "1", "SECRET_KEY_FILE": "/nonexistent/secret"}, "SECRET_KEY_FILE='/nonexistent/secret' cannot be read"),
        # Single sign-on (docs/sso.md).
        ({"EPHEMERA_DEMO": "1", "EPHEMERA_LOCAL_LOGIN": "0"}, "EPHEMERA_LOCAL_LOGIN=0 needs OIDC_ISSUER"),
        ({"EPHEMERA_DEMO": "1", "OIDC_ISSUER": "https://idp.example"}, "OIDC_ISSUER needs OIDC_CLIENT_ID"),
        ({"EPHEMERA_DEMO": "1", "OIDC_ISSUER": "https://idp.example", "OIDC_CLIENT_ID": "e"}, "needs OIDC_CLIENT_SECRET"),
        ({"EPHEMERA_DEMO": "1", "OIDC_ISSUER": "http://idp.example", "OIDC_CLIENT_ID": "e", "OIDC_CLIENT_SECRET": "s"},
         "must be an https:// URL (http only to localhost"),
        ({"SECRET_KEY": "x" * 50, "ALLOWED_HOSTS": "e.example", "OIDC_ISSUER": "http://127.0.0.1:9000", "OIDC_CLIENT_ID": "e",
          "OIDC_CLIENT_SECRET": "s"}, "http only to localhost in demo/debug mode"),
        ({"EPHEMERA_DEMO": "1", "OIDC_ISSUER": "https://idp.example", "OIDC_CLIENT_ID": "e", "OIDC_CLIENT_SECRET": "s",
          "OIDC_SCOPES": "email profile"}, "OIDC_SCOPES='email profile' must include openid"),
    ],
)
def test_it_refuses_to_start_with_a_bad_setting(env: dict[str, str], message: str) -> None:
    result = start(env)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr[-2000:]


def test_it_reads_the_sso_settings_and_the_client_secret_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "oidc-secret"
    secret.write_text("client-secret-from-a-file\n")
    result = start({"EPHEMERA_DEMO": "1", "OIDC_ISSUER": "https://idp.example/realms/corp/", "OIDC_CLIENT_ID": "ephemera",
                    "OIDC_CLIENT_SECRET_FILE": str(secret), "OIDC_ADMIN_GROUPS": "platform, sre", "OIDC_PROVIDER_NAME": "",
                    "EPHEMERA_LOCAL_LOGIN": "0"},
                   probe="OIDC_ISSUER,OIDC_CLIENT_SECRET,OIDC_ADMIN_GROUPS,OIDC_PROVIDER_NAME,AUTHENTICATION_BACKENDS,EPHEMERA_LOCAL_LOGIN")
    assert result.returncode == 0, result.stderr[-2000:]
    values = eval(result.stdout)  # noqa: S307 (the repr of our own probe)
    assert values["OIDC_ISSUER"] == "https://idp.example/realms/corp"  # no trailing slash: discovery appends the path
    assert values["OIDC_CLIENT_SECRET"] == "client-secret-from-a-file" and values["OIDC_ADMIN_GROUPS"] == ["platform", "sre"]
    assert values["OIDC_PROVIDER_NAME"] == "single sign-on" and values["EPHEMERA_LOCAL_LOGIN"] is False
    assert values["AUTHENTICATION_BACKENDS"][-1] == "portal.sso.backend.SsoBackend"


def test_it_starts_on_embedded_defaults_in_demo_mode() -> None:
    result = start({"EPHEMERA_DEMO": "1"}, probe="DATABASES,CHANNEL_LAYERS,ALLOWED_HOSTS")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "django.db.backends.sqlite3" in result.stdout and "InMemoryChannelLayer" in result.stdout


def test_it_reads_production_settings_and_secret_files(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t-from-a-mounted-file\n")
    result = start(
        {"SECRET_KEY_FILE": str(secret), "ALLOWED_HOSTS": "ephemera.example.com",
         "DATABASE_URL": "postgres://u:p@db:5432/ephemera", "REDIS_URL": "redis://cache:6379/0",
         "EPHEMERA_AUDITOR_GROUP": "security-auditors"},
        probe="SECRET_KEY,ALLOWED_HOSTS,EPHEMERA_AUDITOR_GROUP,SESSION_COOKIE_SECURE",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "'SECRET_KEY': 's3cr3t-from-a-mounted-file'" in result.stdout
    assert "'EPHEMERA_AUDITOR_GROUP': 'security-auditors'" in result.stdout
    assert "'SESSION_COOKIE_SECURE': True" in result.stdout
