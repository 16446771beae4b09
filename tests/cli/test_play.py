"""`kubectl ephemera play`: a recorded session replayed from the portal's .cast download, and the
replay's own rules (recorded output raw, marker text cleaned, pauses capped and sped up)."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pexpect
import pytest
from ephemera_cli import play
from ephemera_cli.errors import CliError

from tests.cli.conftest import Stack, User, pod_request, wait_for
from tests.e2e.test_sigkill import _free_port


def _cast(*events: list[Any]) -> io.BytesIO:
    header = {"version": 2, "width": 80, "height": 24, "timestamp": 0, "title": "alice on default/web"}
    return io.BytesIO("".join(json.dumps(x) + "\n" for x in (header, *events)).encode())


def _replay(cast: io.BytesIO, monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> tuple[bytes, list[float]]:
    pauses: list[float] = []

    async def sleep(seconds: float) -> None:
        pauses.append(round(seconds, 6))

    monkeypatch.setattr(play.asyncio, "sleep", sleep)
    _, events = play.read_cast(cast)
    out = io.BytesIO()
    asyncio.run(play.replay(events, out, **{"speed": 1.0, "idle_limit": 2.0, "wait": True, **kwargs}))  # type: ignore[arg-type]
    return out.getvalue(), pauses


def test_output_is_raw_marker_text_is_cleaned_input_and_resizes_are_not_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    out, _ = _replay(_cast([0.1, "o", "\x1b[1mbold\x1b[0m\r\n"], [0.2, "i", "typed-secret"], [0.3, "r", "100x40"],
                           [0.4, "m", "ended\x1b]0;owned\x07 by \x1b[2Jbob\u202e"]), monkeypatch)
    assert out.startswith(b"\x1b[1mbold\x1b[0m\r\n")
    assert b"typed-secret" not in out and b"100x40" not in out
    marker = out.split(b"\r\n[ephemera] marker: ", 1)[1]
    assert b"\x1b" not in marker and b"\x07" not in marker and "\u202e".encode() not in marker
    assert b"by" in marker and b"bob" in marker


def test_pauses_are_capped_at_the_idle_limit_then_divided_by_the_speed(monkeypatch: pytest.MonkeyPatch) -> None:
    cast = [[0.5, "o", "a"], [1.5, "o", "b"], [31.5, "o", "c"], [31.5, "o", "d"]]
    assert _replay(_cast(*cast), monkeypatch)[1] == [1.0, 2.0]
    assert _replay(_cast(*cast), monkeypatch, speed=4.0)[1] == [0.25, 0.5]
    assert _replay(_cast(*cast), monkeypatch, idle_limit=None)[1] == [1.0, 30.0]
    out, pauses = _replay(_cast(*cast), monkeypatch, wait=False)
    assert (out, pauses) == (b"abcd", [])


def test_what_is_not_an_asciicast_v2_file_is_refused() -> None:
    for body in (b"<html>login</html>\n", b'{"version": 1}\n', b"[1, 2]\n"):
        with pytest.raises(CliError, match="line 1"):
            play.read_cast(io.BytesIO(body))
    _, events = play.read_cast(_cast([0.1, "o", "ok"], [True, "o", "x"]))
    with pytest.raises(CliError, match="line 3"):
        list(events)


@pytest.mark.slow
def test_play_a_recorded_session(stack: Stack, alice: User, bob: User) -> None:
    rid = alice.api("POST", "/api/v1/requests", pod_request(stack, reason="play me"))[1]["id"]
    assert bob.api("POST", f"/api/v1/requests/{rid}/approve", {"comment": "ok"})[0] == 200
    sid = wait_for(lambda: (alice.api("GET", f"/api/v1/requests/{rid}")[1].get("session") or {}).get("id"), 60)
    wait_for(lambda: alice.api("GET", f"/api/v1/sessions/{sid}")[1]["status"] == "running", 60)

    child = alice.spawn("attach", sid)
    child.expect(r"\[ephemera\] Attached to session")
    # $((40+2)) is expanded by the shell: only its output, never the typed line, says played-42.
    child.send("echo played-$((40+2))\r")
    child.expect("played-42")
    child.send("\x10\x11")  # detach, then end from another command, as people do
    child.expect(r"Detached")
    child.expect(pexpect.EOF)
    child.close()
    assert alice.json("end", sid)["status"] == "ended"

    def recorded() -> Any:
        result = alice.run("play", sid, "-o", "json")
        return result.returncode == 0 and "played-42" in result.stdout and result
    dumped = wait_for(recorded, 30)
    lines = [json.loads(line) for line in dumped.stdout.splitlines()]
    assert lines[0]["version"] == 2 and "alice" in lines[0]["title"]
    assert all(isinstance(e, list) and len(e) == 3 and e[1] in "oirm" for e in lines[1:])
    assert any(e[1] == "o" and "played-42" in e[2] for e in lines[1:])

    played = alice.run("play", sid, "--speed", "100", timeout=60)
    assert played.returncode == 0, played.stderr
    assert "played-42" in played.stdout
    assert f"Playing session {sid}" in played.stderr
    assert "played-42" in alice.run("play", sid, "--no-wait").stdout


@pytest.mark.slow
def test_play_exit_codes(stack: Stack, alice: User) -> None:
    missing = alice.run("play", "00000000-0000-4000-8000-000000000000")
    assert missing.returncode == 1 and "no recording of session" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    assert alice.run("play", "nope").returncode == 2
    assert alice.run("play", "00000000-0000-4000-8000-000000000000", "--speed", "0").returncode == 2
    bad_token = alice.run("play", "00000000-0000-4000-8000-000000000000", env={**alice.env, "EPHEMERA_TOKEN": "eph_wrong"})
    assert bad_token.returncode == 7
    dead = {**alice.env, "EPHEMERA_URL": f"http://127.0.0.1:{_free_port()}", "EPHEMERA_TOKEN": "eph_x"}
    assert alice.run("play", "00000000-0000-4000-8000-000000000000", env=dead).returncode == 6
