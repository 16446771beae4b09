"""What a recording append costs: zlib's fastest level, one read of the recording row; still exact."""

from __future__ import annotations

import json
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from sessions.recording import selectors, services
from sessions.recording.models import RecordingChunk
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


def test_chunks_are_stored_at_zlibs_fastest_level(db: Any, alice: Any, make_request: Any) -> None:
    sid = _session(alice, make_request)
    _append(sid, _seq(1, 20_000), "café ✓\r\n".encode())
    chunk = RecordingChunk.objects.get(session_id=sid)
    raw = zlib.decompress(bytes(chunk.data))
    # Level 1 costs a third of level 6's CPU on output like this (bench/recorder.py).
    assert bytes(chunk.data) == zlib.compress(raw, 1)
    assert raw.count(b"\n") == chunk.event_count and chunk.raw_size == len(raw)


def test_an_append_to_a_recording_reads_its_row_once(db: Any, alice: Any, make_request: Any) -> None:
    sid = _session(alice, make_request)
    _append(sid, b"first\r\n")
    with CaptureQueriesContext(connection) as ctx:
        _append(sid, b"second\r\n")
    reads = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith("SELECT") and "debug_sessions_recording" in q["sql"]]
    assert len(reads) == 1, reads  # the locked read; no get_or_create probe before it


def test_chunks_of_either_level_make_one_exact_chain_asciinema_plays(
    db: Any, alice: Any, make_request: Any, monkeypatch: Any, tmp_path: Path
) -> None:
    sid = _session(alice, make_request)
    monkeypatch.setattr(services, "COMPRESS_LEVEL", 6)  # a chunk written before the change
    _append(sid, _seq(1, 3000))
    monkeypatch.setattr(services, "COMPRESS_LEVEL", 1)
    _append(sid, _seq(3000, 6000), "naïve 日本語\r\n".encode())
    assert selectors.verify_recording(sid) == 2
    cast = b"".join(selectors.iter_cast(sid, title="t"))
    events = [json.loads(line) for line in cast.decode().splitlines()[1:]]
    out = "".join(e[2] for e in events if e[1] == "o")
    assert out.encode() == _seq(1, 6000) + "naïve 日本語\r\n".encode()  # byte-exact
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
