"""Management commands: seed_demo and create_api_token."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError

from portal import permissions
from portal.models import ApiToken
from portal.tokens import user_for_token


def test_seed_demo_refuses_outside_demo_mode(db: Any, settings: Any) -> None:
    settings.DEMO = False
    with pytest.raises(CommandError, match="demo mode"):
        call_command("seed_demo")
    assert not User.objects.exists()


def test_seed_demo_creates_the_personas_and_is_idempotent(db: Any, settings: Any) -> None:
    settings.DEMO = True
    call_command("seed_demo", stdout=None)
    call_command("seed_demo", stdout=None)
    assert User.objects.count() == 5
    for name in ("alice", "bob", "carol", "dave", "admin"):
        assert authenticate(username=name, password=f"{name}-demo-pass") is not None
    by = {u.username: u for u in User.objects.all()}
    assert permissions.is_approver(by["bob"]) and permissions.is_approver(by["carol"])
    assert permissions.is_auditor(by["dave"]) and permissions.is_admin(by["admin"])
    assert not (permissions.is_approver(by["alice"]) or permissions.is_auditor(by["alice"]) or permissions.is_admin(by["alice"]))


def test_create_api_token_prints_a_working_token_once(db: Any, alice: Any, capsys: Any) -> None:
    call_command("create_api_token", "alice", "--name", "laptop")
    raw = capsys.readouterr().out.strip()
    assert user_for_token(raw) == alice
    token = ApiToken.objects.get(user=alice)
    assert token.name == "laptop" and raw not in token.digest


def test_create_api_token_for_an_unknown_user(db: Any) -> None:
    with pytest.raises(CommandError, match="no user named 'ghost'"):
        call_command("create_api_token", "ghost")
