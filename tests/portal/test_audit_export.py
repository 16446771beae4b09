"""Exporting the audit trail as JSON lines: the command, the auditor-only API, checking an export."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.utils import timezone

from portal.audit import AuditChainError, AuditOrigin, record_event
from portal.audit_export import verify_lines
from portal.models import AuditEvent


def _write(n: int, actor: Any = None) -> list[AuditEvent]:
    events = []
    for i in range(n):
        with transaction.atomic():
            events.append(
                record_event(action="test.event", actor=actor, data={"i": i, "text": "é€"}, origin=AuditOrigin("10.0.0.1", "ua"))
            )
    return events


def test_the_command_writes_one_checked_json_line_per_event(db: Any, alice: Any, tmp_path: Path) -> None:
    events = _write(5, actor=alice)
    out = tmp_path / "audit.jsonl"
    call_command("export_audit", "--output", str(out), stderr=StringIO())
    lines = out.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["id"] for line in lines] == [e.pk for e in events]
    first = json.loads(lines[0])
    assert first["actor"] == "alice" and first["action"] == "test.event" and first["data"] == {"i": 0, "text": "é€"}
    assert first["hash"] == events[0].hash and first["prev_hash"] == ""
    assert verify_lines(lines) == 5


def test_an_edited_export_line_is_caught(db: Any) -> None:
    _write(3)
    stdout = StringIO()
    call_command("export_audit", stdout=stdout, stderr=StringIO())
    lines = stdout.getvalue().splitlines()
    forged = json.loads(lines[1])
    forged["actor"] = "mallory"
    with pytest.raises(AuditChainError, match="was changed"):
        verify_lines([lines[0], json.dumps(forged), lines[2]])
    with pytest.raises(AuditChainError, match="does not link"):
        verify_lines([lines[0], lines[2]])


def test_the_command_refuses_to_export_a_tampered_trail(db: Any) -> None:
    events = _write(3)
    AuditEvent.objects.filter(pk=events[1].pk).update(action="request.approved")
    with pytest.raises(CommandError, match="broken"):
        call_command("export_audit", stdout=StringIO(), stderr=StringIO())


def test_since_limits_the_export(db: Any) -> None:
    _write(3)
    stdout = StringIO()
    call_command(
        "export_audit", "--since", (timezone.now() - timedelta(days=1)).date().isoformat(), stdout=stdout, stderr=StringIO()
    )
    assert len(stdout.getvalue().splitlines()) == 3
    stdout = StringIO()
    call_command(
        "export_audit", "--since", (timezone.now() + timedelta(days=1)).date().isoformat(), stdout=stdout, stderr=StringIO()
    )
    assert stdout.getvalue() == ""
    with pytest.raises(CommandError, match="not an ISO date"):
        call_command("export_audit", "--since", "yesterday", stdout=StringIO(), stderr=StringIO())


@pytest.mark.parametrize("who,code", [("dave", 200), ("admin", 200), ("bob", 403), ("alice", 403), (None, 401)])
def test_only_auditors_and_admins_export_through_the_api(
    db: Any, people: Any, api_client_for: Any, who: str | None, code: int
) -> None:
    _write(2)
    client = api_client_for(getattr(people, who) if who else None)
    resp = client.get("/api/v1/audit/export")
    assert resp.status_code == code
    if code == 200:
        assert resp["Content-Type"] == "application/jsonl"
        lines = b"".join(resp.streaming_content).decode().splitlines()
        assert verify_lines(lines) == 2


def test_the_api_rejects_a_bad_since(db: Any, dave: Any, api_client_for: Any) -> None:
    assert api_client_for(dave).get("/api/v1/audit/export", {"since": "soon"}).status_code == 400
