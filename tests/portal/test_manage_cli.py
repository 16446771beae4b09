"""manage.py in a shell of its own: a bad or missing setting is one line naming what to set.

A new user ran `manage.py create_api_token alice` in a second shell next to `make run` and got
a SECRET_KEY traceback (the demo environment lives only in `make run`'s own processes).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Everything the settings read, and what pytest-django and tests/settings.py put in this
# process's environment (EPHEMERA_DEMO=1 among them): the child starts as a fresh shell would.
_SETTINGS_ENV = ("EPHEMERA_", "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ALLOWED_HOSTS", "CSRF_", "DEBUG", "KUBECONFIG",
                 "DJANGO_SETTINGS_MODULE", "LOG_LEVEL")


def manage(*args: str, env: dict[str, str] | None = None, var_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(_SETTINGS_ENV)}
    base["EPHEMERA_VAR_DIR"] = str(var_dir or ROOT / "var" / "test-manage")
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("command", [["create_api_token", "alice"], ["verify_audit"], ["export_audit"]])
def test_a_missing_secret_key_is_one_line_saying_what_to_set(command: list[str]) -> None:
    result = manage(*command)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.endswith("\n"), result.stderr
    line = result.stderr.strip()
    assert line.startswith("ephemera: SECRET_KEY is required"), line
    assert "SECRET_KEY_FILE" in line and "EPHEMERA_DEMO=1" in line
    assert result.stdout == ""


def test_any_bad_setting_is_one_line_naming_it() -> None:
    result = manage("verify_audit", env={"EPHEMERA_DEMO": "maybe"})
    assert result.returncode == 2
    assert result.stderr == "ephemera: EPHEMERA_DEMO='maybe' is not a boolean (use 1/0, true/false, yes/no, on/off)\n"


def test_a_command_error_keeps_its_own_exit_code() -> None:
    # Only settings errors are ours to shorten: Django's own usage errors stay as they were.
    result = manage("no_such_command", env={"EPHEMERA_DEMO": "1"})
    assert result.returncode == 1 and "Unknown command: 'no_such_command'" in result.stderr


def test_the_readme_token_command_works_as_written(tmp_path: Path) -> None:
    """What the README gives for a second shell next to `make run` (demo mode, its database)."""
    demo = {"EPHEMERA_DEMO": "1"}
    for step in (["migrate", "--noinput", "-v", "0"], ["seed_demo"]):
        done = manage(*step, env=demo, var_dir=tmp_path)
        assert done.returncode == 0, done.stderr
    token = manage("create_api_token", "alice", env=demo, var_dir=tmp_path)
    assert token.returncode == 0, token.stderr
    assert token.stdout.strip().startswith("eph_")
    audit = manage("verify_audit", env=demo, var_dir=tmp_path)
    assert audit.returncode == 0 and "audit trail intact" in audit.stdout, audit.stderr
