"""What a recording append costs: raw events at zstd's fastest level, one read of the recording row; still exact."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import zstandard
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from sessions.recording import frames, selectors, services
from sessions.recording.cast import event_line
from sessions.recording.models import Recording, RecordingChunk
from sessions.recording.recorder import Recorder

ASCIINEMA = str(Path(sys.executable).with_name("asciinema"))


def _session(alice: Any, make_request: Any) -> str:
    from sessions.models import DebugSession

    req = make_request(alice, status="approved")
    return str(DebugSession.objects.create(request=req, created_at=timezone.now(), namespace="default", pod="p", container_name="c").pk)


def _seq(start: int, stop: int) -> bytes:
    return b"".join(b"%d\r\n" % i for i in range(start, stop))


def _append(sid: str, *outputs: bytes) -> None:
    rec = Recorder(sid, record_input=True)
    for data in outputs:
        rec.output(data)
    services.recording_append(session_id=sid, batch=rec.take(), records_input=True)


def test_chunks_are_the_raw_events_at_zstds_fastest_level(db: Any, alice: Any, make_request: Any) -> None:
    sid = _session(alice, make_request)
    outputs = [_seq(1, 20_000), "café ✓\r\n".encode(), b"not utf-8: \xff\xfe\r\n"]
    _append(sid, *outputs)
    chunk = RecordingChunk.objects.get(session_id=sid)
    assert chunk.format == frames.RAW_ZSTD
    payload = frames.decompress(chunk.format, bytes(chunk.data))
    # Stored as the terminal saw it, byte for byte, nothing decoded or encoded on the way in.
    assert [(code, data) for _t, code, data in frames.decode(payload)] == [("o", d) for d in outputs]
    assert bytes(chunk.data) == zstandard.ZstdCompressor(level=1).compress(payload)
    assert chunk.raw_size == len(payload) and chunk.event_count == 3
    assert len(chunk.data) * 3 < len(payload)  # compressed; a decoding bug would not compress
    # The .cast export is where bytes become text: invalid UTF-8 shows as U+FFFD, as in the browser.
    cast = b"".join(selectors.iter_cast(sid, title="t")).decode()
    out = "".join(e[2] for e in map(json.loads, cast.splitlines()[1:]) if e[1] == "o")
    assert out == _seq(1, 20_000).decode() + "café ✓\r\nnot utf-8: \ufffd\ufffd\r\n"


def test_an_append_to_a_recording_reads_its_row_once(db: Any, alice: Any, make_request: Any) -> None:
    sid = _session(alice, make_request)
    _append(sid, b"first\r\n")
    with CaptureQueriesContext(connection) as ctx:
        _append(sid, b"second\r\n")
    reads = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith("SELECT") and "debug_sessions_recording" in q["sql"]]
    assert len(reads) == 1, reads  # the locked read; no get_or_create probe before it


def _legacy_chunk(sid: str, lines: list[tuple[float, str]]) -> None:
    """A chunk as written before raw framing: zlib (level 6) of asciicast lines, times relative."""
    from datetime import timedelta

    raw = "".join(event_line(t, "o", text) for t, text in lines).encode()
    rec = Recording.objects.create(
        session_id=sid, started_at=timezone.now() - timedelta(seconds=5), records_input=True, chunk_count=1,
        event_count=len(lines), duration=lines[-1][0], last_digest=hashlib.sha256(raw).hexdigest(),
    )
    RecordingChunk.objects.create(
        session_id=sid, seq=0, format=frames.CAST_ZLIB, t_end=lines[-1][0], event_count=len(lines),
        raw_size=len(raw), data=zlib.compress(raw, 6), digest=rec.last_digest,
    )


def test_old_and_new_chunks_make_one_exact_chain_asciinema_plays(
    db: Any, alice: Any, make_request: Any, tmp_path: Path
) -> None:
    sid = _session(alice, make_request)
    _legacy_chunk(sid, [(0.5, _seq(1, 3000).decode()), (4.0, "old\r\n")])  # written before the upgrade
    snowman = "☃".encode()
    _append(sid, _seq(3000, 6000), b"naive " + snowman[:1])  # a character split between two chunks
    _append(sid, snowman[1:] + "日本語\r\n".encode())
    assert selectors.verify_recording(sid) == 3
    cast = b"".join(selectors.iter_cast(sid, title="t"))
    events = [json.loads(line) for line in cast.decode().splitlines()[1:]]
    times = [e[0] for e in events]
    assert times == sorted(times) and times[0] == 0.5 and times[2] >= 4.0  # never back in time
    out = "".join(e[2] for e in events if e[1] == "o")
    assert out.encode() == _seq(1, 3000) + b"old\r\n" + _seq(3000, 6000) + "naive ☃日本語\r\n".encode()  # byte-exact
    assert selectors.output_tail(sid, limit=30) == (_seq(3000, 6000) + "naive ☃日本語\r\n".encode())[-30:]
    path = tmp_path / "s.cast"
    path.write_bytes(cast)
    played = subprocess.run([ASCIINEMA, "cat", str(path)], capture_output=True, timeout=30)
    assert played.returncode == 0, played.stderr
    assert played.stdout == out.encode()


def test_postgresql_stores_chunks_without_compressing_them_again(db: Any, alice: Any, make_request: Any) -> None:
    # A migration that runs only on PostgreSQL (CI runs this file there too); on SQLite the
    # column is an ordinary BLOB and appends work the same.
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT attstorage FROM pg_attribute WHERE attrelid = 'debug_sessions_recordingchunk'::regclass AND attname = 'data'"
            )
            assert cursor.fetchone() == ("e",)  # EXTERNAL: out of line, no pglz over zlib
        else:
            cursor.execute("SELECT type FROM pragma_table_info('debug_sessions_recordingchunk') WHERE name = 'data'")
            assert cursor.fetchone() == ("BLOB",)
    sid = _session(alice, make_request)
    _append(sid, _seq(1, 50_000))
    assert selectors.verify_recording(sid) == 1
