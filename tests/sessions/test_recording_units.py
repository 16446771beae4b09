"""Recording pieces without a cluster: line tracking, split UTF-8, chunks, the .cast, the chain."""

from __future__ import annotations

import json
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest

from sessions.recording import selectors, services
from sessions.recording.cast import LineTracker
from sessions.recording.models import Recording, RecordingChunk, SessionCommand
from sessions.recording.recorder import Recorder

ASCIINEMA = str(Path(sys.executable).with_name("asciinema"))


@pytest.mark.parametrize(
    "keys,commands",
    [
        ("ls -l\r", ["ls -l"]),
        ("lx\x7fs\r", ["ls"]),
        ("rm -rf /\x15echo safe\r", ["echo safe"]),
        ("sleep 100\x03\rps\r", ["ps"]),
        ("cat /etc/passwd\x17hosts\r", ["cat hosts"]),
        ("ls\x1b[A\x1bOB -a\r", ["ls -a"]),  # arrow keys are skipped, not typed
        ("\x1b[200~echo a\recho b\x1b[201~\r", ["echo a", "echo b"]),  # a bracketed paste
        ("   \r\r", []),
    ],
)
def test_line_tracker_follows_line_editing(keys: str, commands: list[str]) -> None:
    assert LineTracker().feed(keys) == commands


def test_a_split_multibyte_character_is_held_for_the_next_event() -> None:
    rec = Recorder("s", record_input=True)
    data = "é€😀".encode()
    for i in range(len(data)):  # one byte at a time: every cut falls inside a character
        rec.output(data[i : i + 1])
    events = rec.take().events
    assert b"".join(d for _t, _c, d in events) == data  # kept as bytes, exactly
    # The cast is built on read: a character cut between reads is whole in its last byte's event.
    from datetime import UTC, datetime

    from sessions.recording import frames

    renderer = frames.CastRenderer(datetime.fromtimestamp(events[0][0], tz=UTC))
    lines = renderer.render(frames.RAW_ZSTD, frames.compress(frames.encode(events)), 0.0).decode().splitlines()
    texts = [json.loads(line)[2] for line in lines]
    assert "".join(texts) == "é€😀" and len(texts) == 3
    assert all("\ufffd" not in t for t in texts)


def test_input_is_not_recorded_when_the_setting_is_off() -> None:
    rec = Recorder("s", record_input=False)
    rec.input(b"secret\r")
    rec.output(b"ok")
    batch = rec.take()
    assert [code for _t, code, _x in batch.events] == ["o"] and batch.commands == []


def _session(alice: Any, bob: Any, make_request: Any) -> Any:
    from django.utils import timezone

    from sessions.models import DebugSession

    req = make_request(alice, status="approved")
    return DebugSession.objects.create(request=req, created_at=timezone.now(), namespace="default", pod="p", container_name="c")


def test_chunks_compress_and_assemble_into_a_cast_asciinema_plays(
    db: Any, alice: Any, bob: Any, make_request: Any, tmp_path: Path
) -> None:
    session = _session(alice, bob, make_request)
    rec = Recorder(str(session.pk), record_input=True)
    rec.resize(100, 30)
    rec.marker("terminal attached by alice")
    rec.input(b"echo h\xc3")  # a character split across two keystroke frames
    rec.input(b"\xa9llo\r")
    for i in range(200):
        rec.output(f"line {i} héllo wörld\r\n".encode())
    services.recording_append(session_id=str(session.pk), batch=rec.take(), records_input=True)
    rec.output("second chunk €\r\n".encode())
    services.recording_append(session_id=str(session.pk), batch=rec.take(), records_input=True)

    recording = Recording.objects.get(session=session)
    assert (recording.width, recording.height, recording.chunk_count) == (100, 30, 2)
    assert recording.stored_bytes < recording.raw_bytes / 3, "typical output compresses well"
    assert list(SessionCommand.objects.filter(session=session).values_list("text", flat=True)) == ["echo héllo"]
    assert selectors.verify_recording(str(session.pk)) == 2

    cast = b"".join(selectors.iter_cast(str(session.pk), title="t"))
    lines = cast.decode().splitlines()
    header = json.loads(lines[0])
    assert header["version"] == 2 and header["width"] == 100 and header["height"] == 30
    events = [json.loads(line) for line in lines[1:]]
    assert [e[1] for e in events[:3]] == ["r", "m", "i"]
    times = [e[0] for e in events]
    assert times == sorted(times)
    out = "".join(e[2] for e in events if e[1] == "o")
    assert out == "".join(f"line {i} héllo wörld\r\n" for i in range(200)) + "second chunk €\r\n"

    path = tmp_path / "s.cast"
    path.write_bytes(cast)
    played = subprocess.run([ASCIINEMA, "cat", str(path)], capture_output=True, timeout=30)
    assert played.returncode == 0, played.stderr
    assert played.stdout.decode() == out


def test_a_changed_or_missing_chunk_breaks_the_recording_chain(db: Any, alice: Any, bob: Any, make_request: Any) -> None:
    session = _session(alice, bob, make_request)
    sid = str(session.pk)
    for i in range(3):
        rec = Recorder(sid, record_input=True)
        rec.output(f"chunk {i}\r\n".encode())
        services.recording_append(session_id=sid, batch=rec.take(), records_input=True)
    assert selectors.verify_recording(sid) == 3
    chunk = RecordingChunk.objects.get(session=session, seq=1)
    RecordingChunk.objects.filter(pk=chunk.pk).update(data=zlib.compress(b'[0.1, "o", "forged"]\n'))
    with pytest.raises(selectors.RecordingBroken, match="chunk 1 was changed"):
        selectors.verify_recording(sid)
    RecordingChunk.objects.filter(pk=chunk.pk).delete()
    with pytest.raises(selectors.RecordingBroken, match="chunk 1 is missing"):
        selectors.verify_recording(sid)


def test_the_backlog_counts_output_until_it_is_written():
    from sessions.recording.recorder import Recorder

    rec = Recorder("s-backlog", record_input=True)
    rec.output(b"x" * 1000)
    batch = rec.take()
    rec.output(b"y" * 10)
    assert rec.backlog == 1010  # taken but not yet stored still counts
    rec.put_back(batch)  # the write failed: still owed
    assert rec.backlog == 1010
    rec.take()
    rec.written()
    assert rec.backlog == 0
