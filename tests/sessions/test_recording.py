"""Recording a real terminal (kubesim attach): byte-exact output, input, commands, reconnects, .cast."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from sessions.recording import selectors
from sessions.recording.models import Recording, SessionCommand
from tests.sessions.conftest import open_term
from tests.sessions.test_recording_units import ASCIINEMA

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


async def _ready(term: Any) -> None:
    await term.until(lambda: any(s["event"] == "connected" for s in term.statuses))
    await term.resize(120, 40)


def _events(session_id: str) -> list[list[Any]]:
    cast = b"".join(selectors.iter_cast(session_id, title="t")).decode()
    return [json.loads(line) for line in cast.splitlines()[1:]]


async def test_the_recording_is_what_the_terminal_showed_byte_for_byte(
    term_session: Any, term_users: Any, tmp_path: Path
) -> None:
    sid = str(term_session.pk)
    term, _ = await open_term(term_session, user=term_users.alice)
    try:
        await _ready(term)
        banner = next(s for s in term.statuses if s["event"] == "connected")["message"]
        assert "recorded" in banner and "typed input" in banner
        # Multibyte characters far beyond one read: chunk edges fall inside characters.
        await term.run("i=0; while [ $i -lt 2000 ]; do printf 'é€😀'; i=$((i+1)); done", "utf", timeout=30)
        await term.type("echo typo\x7f\x7f\x7f\x7fdone-$((1+1))\r")
        await term.expect_output(b"done-2")
        await term.resize(90, 30)
        await term.run("stty size", "sz")
    finally:
        await term.close()
    first_out = bytes(term.out)

    # A reconnect goes into the same recording, after a marker.
    term2, _ = await open_term(term_session, user=term_users.alice)
    try:
        await _ready(term2)
        await term2.run("echo again", "again")
    finally:
        await term2.close()

    events = await sync_to_async(_events)(sid)
    recorded = "".join(e[2] for e in events if e[1] == "o").encode()
    assert recorded[: len(first_out)] == first_out, "the first connection's output, byte for byte"
    rest = recorded[len(first_out) :]
    # The second connection saw the session's earlier output replayed, then its own: the recording
    # ends the same way, up to the last marker. After it the recording may also hold the prompt the
    # attach read once the browser had left (the shell prints it when the command ends): nothing more.
    end = b"again-end\r\n"
    seen = bytes(term2.out)
    assert end in rest, "the second connection's output is recorded"
    seen_to_end = seen[: seen.rindex(end) + len(end)]
    rest_to_end = rest[: rest.rindex(end) + len(end)]
    assert seen_to_end.endswith(rest_to_end), "the second connection's output, byte for byte"
    assert len(rest) - len(rest_to_end) < 64
    assert [e[2] for e in events if e[1] == "m"] == ["terminal attached by alice"] * 2
    assert [e[2] for e in events if e[1] == "r"][:3] == ["120x40", "90x30", "120x40"]
    typed = "".join(e[2] for e in events if e[1] == "i")
    assert "echo typo\x7f\x7f\x7f\x7fdone-$((1+1))\r" in typed
    commands = await sync_to_async(lambda: list(SessionCommand.objects.filter(session_id=sid).values_list("text", flat=True)))()
    assert "echo done-$((1+1))" in commands
    assert any(c.startswith("echo 'again''-start'") for c in commands)
    rec = await sync_to_async(Recording.objects.get)(session_id=sid)
    assert (rec.width, rec.height, rec.records_input) == (120, 40, True)
    assert await sync_to_async(selectors.verify_recording)(sid) == rec.chunk_count


async def test_the_cast_download_plays_in_asciinema_and_only_for_allowed_roles(
    term_session: Any, term_users: Any, tmp_path: Path
) -> None:
    sid = str(term_session.pk)
    term, _ = await open_term(term_session, user=term_users.alice)
    try:
        await _ready(term)
        await term.run("echo played-$((40+2))", "play")
    finally:
        await term.close()

    def download(user: Any) -> Any:
        from django.test import Client

        client = Client()
        client.force_login(user)
        resp = client.get(f"/api/v1/sessions/{sid}/recording.cast")
        resp.body = b"".join(resp.streaming_content) if resp.status_code == 200 else b""
        return resp

    resp = await sync_to_async(download)(term_users.alice)
    assert resp.status_code == 200 and resp["Content-Type"] == "application/x-asciicast"
    assert "attachment" in resp["Content-Disposition"]
    body = resp.body
    path = tmp_path / "session.cast"
    path.write_bytes(body)
    played = await sync_to_async(subprocess.run)([ASCIINEMA, "cat", str(path)], capture_output=True, timeout=30)
    assert played.returncode == 0, played.stderr
    assert b"played-42" in played.stdout
    for user, code in ((term_users.dave, 200), (term_users.admin, 200), (term_users.bob, 403), (term_users.eve, 404)):
        assert (await sync_to_async(download)(user)).status_code == code, user

    # Every read of a recording is in the trail: alice and dave and admin, not the refused ones.
    from portal.models import AuditEvent

    viewers = await sync_to_async(list)(
        AuditEvent.objects.filter(session_id=sid, action="session.recording_viewed").values_list("actor_name", flat=True)
    )
    assert sorted(viewers) == sorted([term_users.alice.username, term_users.dave.username, term_users.admin.username])


async def test_typed_input_is_left_out_when_the_setting_is_off(term_session: Any, term_users: Any, settings: Any) -> None:
    settings.EPHEMERA_RECORD_INPUT = False
    term, _ = await open_term(term_session, user=term_users.alice)
    try:
        await _ready(term)
        assert "not typed input" in next(s for s in term.statuses if s["event"] == "connected")["message"]
        await term.run("echo hidden-$((2*3))", "hid")
    finally:
        await term.close()
    events = await sync_to_async(_events)(str(term_session.pk))
    assert not [e for e in events if e[1] == "i"]
    assert b"hidden-6" in "".join(e[2] for e in events if e[1] == "o").encode()
    assert not await sync_to_async(SessionCommand.objects.filter(session_id=term_session.pk).exists)()
