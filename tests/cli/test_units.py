"""The plugin's pure parts: detach keys, durations, text from other users, URLs, the config file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from ephemera_cli import config, protocol
from ephemera_cli.client import Portal
from ephemera_cli.errors import CliError, Exit
from ephemera_cli.output import clean, parse_minutes, parse_seconds
from ephemera_cli.terminal import Attachment, DetachKeys


def test_ctrl_p_ctrl_q_detaches_even_split_across_reads() -> None:
    keys = DetachKeys()
    assert keys.feed(b"ls\x10") == (b"ls", False)  # held: it may start the sequence
    assert keys.feed(b"\x11rest") == (b"", True)


def test_ctrl_p_then_another_key_sends_both() -> None:
    keys = DetachKeys()
    assert keys.feed(b"\x10") == (b"", False)
    assert keys.feed(b"a") == (b"\x10a", False)
    assert keys.feed(b"\x10\x10\x11") == (b"\x10", True)
    assert DetachKeys().feed(b"plain \x03 text") == (b"plain \x03 text", False)


@pytest.mark.parametrize(("text", "minutes"), [("30m", 30), ("1h", 60), ("1h30m", 90), ("45", 45), ("3600s", 60)])
def test_durations_read_like_kubectl(text: str, minutes: int) -> None:
    assert parse_minutes(text) == minutes


@pytest.mark.parametrize("text", ["90s", "0m", "abc", "30x", "m", "", "1h-5m"])
def test_bad_durations_are_usage_errors(text: str) -> None:
    with pytest.raises(CliError) as exc:
        parse_minutes(text)
    assert exc.value.code == Exit.USAGE


def test_wait_timeouts_take_seconds() -> None:
    assert parse_seconds("2s") == 2 and parse_seconds("10m") == 600 and parse_seconds("5") == 5


def test_text_from_other_users_cannot_drive_the_terminal() -> None:
    evil = "ok\x1b]0;owned\x07 \x1b[2J\u202egnp.exe\r\nfake prompt\x9b31m"
    shown = clean(evil)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or c == "\u202e" for c in shown), repr(shown)
    assert "ok" in shown and "fake prompt" in shown
    assert clean("café ✓ 日本語") == "café ✓ 日本語"


def test_resize_is_clamped_to_what_the_server_accepts() -> None:
    assert protocol.resize(5000, 0) == bytes([protocol.RESIZE]) + (1000).to_bytes(2, "big") + (1).to_bytes(2, "big")


def test_big_input_is_split_into_64_kib_frames() -> None:
    frames = protocol.input_frames(b"x" * (64 * 1024 * 2 + 1))
    assert [len(f) - 1 for f in frames] == [65536, 65536, 1]
    assert all(f[0] == protocol.INPUT for f in frames)


@pytest.mark.parametrize(
    ("url", "ok"),
    [("https://ephemera.example.com/", "https://ephemera.example.com"), ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
     ("http://localhost:8000/", "http://localhost:8000"), ("http://[::1]:8000", "http://[::1]:8000")],
)
def test_portal_urls(url: str, ok: str) -> None:
    assert config.normalize_url(url) == ok


@pytest.mark.parametrize("url", ["http://ephemera.example.com", "ftp://x", "ephemera.example.com", "https://u:p@host",
                                 "https://host/?next=x"])
def test_bad_portal_urls(url: str) -> None:
    with pytest.raises(CliError) as exc:
        config.normalize_url(url)
    assert exc.value.code == Exit.USAGE


def test_saved_config_is_0600_and_replaces_the_old_one_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("EPHEMERA_URL", raising=False)
    monkeypatch.delenv("EPHEMERA_TOKEN", raising=False)
    old = os.umask(0o022)
    try:
        config.save(config.Config("https://a.example", "t1"))
        path = config.save(config.Config("https://b.example", "t2"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert config.load() == config.Config("https://b.example", "t2")
    assert [p.name for p in path.parent.iterdir()] == ["config.json"]  # no temporary file left behind


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setenv("EPHEMERA_URL", "https://ci.example")
    monkeypatch.setenv("EPHEMERA_TOKEN", "from-env")
    assert config.load() == config.Config("https://ci.example", "from-env")
    monkeypatch.setenv("EPHEMERA_URL", "http://ci.example")
    with pytest.raises(CliError):
        config.load()


def test_a_token_that_would_break_the_header_is_refused() -> None:
    for bad in ("abc\r\nX-Evil: 1", "has space", "tökén"):
        with pytest.raises(CliError) as exc:
            config.Config("https://a.example", bad)
        assert exc.value.code == Exit.USAGE


def test_the_terminal_url_comes_from_the_session_id_not_from_the_answer() -> None:
    api = Portal(config.Config("https://portal.example/prefix", "t"))
    sid = "6f1c2d3e-0000-4000-8000-000000000001"
    attachment = Attachment(api, {"id": sid, "websocket_path": "@evil.example/steal"})
    assert attachment.url == f"wss://portal.example/prefix/ws/sessions/{sid}/terminal"
    with pytest.raises(ValueError):
        Attachment(api, {"id": "../../api/v1/audit/export"})


def test_debug_copy_to_builds_a_copy_request() -> None:
    from ephemera_cli.commands import _debug_body
    from ephemera_cli.errors import CliError
    from ephemera_cli.main import build_parser

    parse = build_parser().parse_args
    args = parse(["debug", "ledger-worker-6b8d7f9c5-m4n7p", "-n", "payments", "--target=worker", "--copy-to",
                  "--set-image=worker=busybox", "--target-command", "sleep 'in finity'", "--no-share-processes",
                  "--reason", "crashes"])
    body = _debug_body(args)
    assert body["copy_of"] == "ledger-worker-6b8d7f9c5-m4n7p" and "pod" not in body
    assert (body["namespace"], body["container"]) == ("payments", "worker")
    assert body["set_image"] == {"worker": "busybox"} and body["command"] == ["sleep", "in finity"]
    assert body["share_processes"] is False and "same_node" not in body
    plain = _debug_body(parse(["debug", "web", "--reason", "x"]))
    assert plain["pod"] == "web" and "copy_of" not in plain
    with pytest.raises(CliError, match="go with --copy-to"):
        _debug_body(parse(["debug", "web", "--set-image=a=b", "--reason", "x"]))
    with pytest.raises(CliError, match="not container=image"):
        _debug_body(parse(["debug", "web", "--copy-to", "--set-image=busybox", "--reason", "x"]))
