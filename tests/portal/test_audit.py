"""The audit trail: hash chain, tamper detection, origins, transactions."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.test import RequestFactory

from portal.audit import AuditChainError, AuditOrigin, record_event, verify_chain
from portal.models import AuditEvent


def _write(n: int, actor: Any = None) -> list[AuditEvent]:
    events = []
    for i in range(n):
        with transaction.atomic():
            events.append(record_event(action="test.event", actor=actor, data={"i": i}, origin=AuditOrigin("10.0.0.1", "ua")))
    return events


def test_each_event_links_to_the_previous_one(db: Any, alice: Any) -> None:
    first, second, third = _write(3, actor=alice)
    assert first.prev_hash == "" and second.prev_hash == first.hash and third.prev_hash == second.hash
    assert second.actor_name == "alice"
    assert verify_chain() == 3


@pytest.mark.parametrize(
    "field,value", [("action", "request.approved"), ("actor_name", "mallory"), ("data", {"i": 99}), ("source_ip", "1.2.3.4")]
)
def test_changing_any_field_breaks_the_chain(db: Any, field: str, value: Any) -> None:
    events = _write(3)
    AuditEvent.objects.filter(pk=events[1].pk).update(**{field: value})
    with pytest.raises(AuditChainError, match=f"{events[1].pk} was changed"):
        verify_chain()


def test_deleting_an_event_breaks_the_chain(db: Any) -> None:
    events = _write(3)
    AuditEvent.objects.filter(pk=events[1].pk).delete()
    with pytest.raises(AuditChainError, match="does not link"):
        verify_chain()


def test_verify_audit_command(db: Any, capsys: Any) -> None:
    events = _write(2)
    call_command("verify_audit")
    assert "intact: 2 events" in capsys.readouterr().out
    AuditEvent.objects.filter(pk=events[0].pk).update(user_agent="forged")
    with pytest.raises(CommandError, match="broken"):
        call_command("verify_audit")


def test_record_event_refuses_to_run_outside_a_transaction(db: Any) -> None:
    # pytest-django wraps the test in a transaction; leave it to see the real behaviour.
    from django.db import connection

    in_atomic = connection.in_atomic_block
    connection.in_atomic_block = False
    try:
        with pytest.raises(RuntimeError, match="inside the transaction"):
            record_event(action="x", actor=None)
    finally:
        connection.in_atomic_block = in_atomic


def test_an_event_rolls_back_with_its_change(db: Any) -> None:
    with pytest.raises(ValueError):
        with transaction.atomic():
            record_event(action="test.rolled_back", actor=None)
            raise ValueError("the change failed")
    assert not AuditEvent.objects.filter(action="test.rolled_back").exists()


def test_origin_from_request_ignores_forwarded_for() -> None:
    request = RequestFactory().get("/", REMOTE_ADDR="192.0.2.1", HTTP_USER_AGENT="Firefox", HTTP_X_FORWARDED_FOR="6.6.6.6")
    assert AuditOrigin.from_request(request) == AuditOrigin("192.0.2.1", "Firefox")


def test_origin_from_scope() -> None:
    scope = {"client": ("198.51.100.4", 5555), "headers": [(b"host", b"x"), (b"user-agent", b"curl/8")]}
    assert AuditOrigin.from_scope(scope) == AuditOrigin("198.51.100.4", "curl/8")
    assert AuditOrigin.from_scope({}) == AuditOrigin(None, "")
