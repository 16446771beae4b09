"""The recorder's own cost: CPU per MB of each step, and the pump's relay with recording off and on.

    .venv/bin/python bench/recorder.py [--mb 50] [--runs 3] [--profile]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ephemera_bench .venv/bin/python bench/recorder.py

No network, no Daphne: the pieces the terminal's output goes through in one process.
  - steps: output as the pump hands it over (64 KiB chunks of `seq` or log-like text) through
    Recorder.output (buffering), then what recording_append does with a batch: raw framing,
    zstd level 1, sha256, and the whole append with its database writes; next to what a chunk
    cost before raw framing (UTF-8 decode + asciicast JSON lines, zlib level 1) and what an
    export now pays to build the .cast; ms of CPU per MB for each;
  - relay: sessions.bridge.pump.Pump over an in-memory attach stream flooding the same output,
    to a client that acknowledges at once, with no recorder, then with the real one
    (sessions.recording.live: hooks, flush loop, its writer thread, the database); MB/s.
Without DATABASE_URL a temporary SQLite file; on PostgreSQL a scratch database of its own,
dropped at the end. --profile prints cProfile's top functions of output + recording_append.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from terminal import mixed_text  # noqa: E402

MB = 1_000_000
CHUNK = 64 * 1024


def seq_text(size: int) -> bytes:
    out = bytearray()
    n = 1
    while len(out) < size:
        out += b"%d\r\n" % n
        n += 1
    return bytes(out[:size])


def cpu_ms_per_mb(fn: Callable[[], Any], size: int, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times) * 1000 / (size / MB)


@dataclass
class FakeEvent:
    channel: int
    data: bytes
    status: dict | None = None


class FloodStream:
    """An attach stream that floods `data` in CHUNK-sized events, then ends."""

    def __init__(self, data: bytes) -> None:
        self.view = memoryview(data)
        self.offset = 0

    async def read(self) -> FakeEvent | None:
        if self.offset >= len(self.view):
            return None
        chunk = bytes(self.view[self.offset : self.offset + CHUNK])
        self.offset += len(chunk)
        if self.offset % (16 * CHUNK) == 0:
            await asyncio.sleep(0)  # a real socket yields to the loop now and then
        return FakeEvent(1, chunk)


def make_session() -> str:
    from django.contrib.auth.models import User
    from django.utils import timezone

    from approvals.models import DebugRequest
    from sessions.models import DebugSession

    user = User.objects.create_user(f"bench{time.monotonic_ns()}")
    now = timezone.now()
    req = DebugRequest.objects.create(
        requester=user, created_at=now, namespace="default", pod="web", container="app", image="busybox",
        reason="bench", duration_minutes=10, status="approved", expires_at=now,
    )
    return str(DebugSession.objects.create(request=req, created_at=now, namespace="default", pod="web", container_name="d").pk)


async def relay(data: bytes, *, sid: str = "") -> float:
    """MB/s through the pump; recorded as session `sid` when one is given."""
    from sessions.bridge.pump import Pump
    from sessions.recording import live

    record = bool(sid)
    pump: Pump | None = None

    async def send(frame: bytes) -> None:
        assert pump is not None
        pump.ack(len(frame) - 1)  # a client that reads and acknowledges at once

    if record:
        live._on_connect(sid, "bench")
        pump = Pump(FloodStream(data), send, lambda b: live._on_output(sid, b), hold=lambda: live.hold(sid))  # type: ignore[arg-type]
    else:
        pump = Pump(FloodStream(data), send, lambda b: None)  # type: ignore[arg-type]
    start = time.perf_counter()
    await pump.run()
    if record:
        await live.disconnected(sid)  # the last chunk written: part of the cost
    return len(data) / MB / (time.perf_counter() - start)


def steps(name: str, data: bytes, runs: int) -> None:
    from sessions.recording import frames
    from sessions.recording.cast import event_line, utf8_decoder
    from sessions.recording.recorder import Recorder

    size = len(data)
    chunks = [data[i : i + CHUNK] for i in range(0, size, CHUNK)]

    def record() -> Any:
        rec = Recorder("bench", record_input=True)
        for c in chunks:
            rec.output(c)
        return rec.take()

    def cast_lines() -> bytes:  # what every chunk cost before raw framing: decode + JSON per event
        decoder = utf8_decoder()
        return "".join(event_line(t, "o", decoder.decode(c)) for t, c in enumerate(chunks)).encode()

    batch = record()
    payload = frames.encode(batch.events)
    lines = cast_lines()
    out = [
        ("Recorder.output (buffer)", cpu_ms_per_mb(record, size, runs)),
        ("frames.encode (raw framing)", cpu_ms_per_mb(lambda: frames.encode(batch.events), size, runs)),
        ("zstd level 1 (now)", cpu_ms_per_mb(lambda: frames.compress(payload), size, runs)),
        ("sha256", cpu_ms_per_mb(lambda: hashlib.sha256(payload).hexdigest(), size, runs)),
        ("before: decode + event lines (JSON)", cpu_ms_per_mb(cast_lines, size, runs)),
        ("before: zlib level 1", cpu_ms_per_mb(lambda: zlib.compress(lines, 1), size, runs)),
        ("export: frames to .cast lines", cpu_ms_per_mb(
            lambda: frames.CastRenderer(_epoch()).render(frames.RAW_ZSTD, frames.compress(payload), 0.0), size, runs)),
    ]
    zstd_ratio = len(payload) / len(frames.compress(payload))
    zlib_ratio = len(lines) / len(zlib.compress(lines, 1))
    print(f"{name}: {size // MB} MB; stored now: zstd 1 {zstd_ratio:.1f}:1 of the raw events; before: zlib 1 {zlib_ratio:.1f}:1 of .cast lines "
          f"({len(lines) / size:.2f}x the output)")
    for label, ms in out:
        print(f"  {label:<38} {ms:7.1f} ms CPU per MB")


def _epoch() -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(0, tz=UTC)


def append_cost(data: bytes, runs: int) -> None:
    """recording_append as the flusher calls it: 256 KiB batches (an early flush's size)."""
    from sessions.recording.recorder import Recorder
    from sessions.recording.services import recording_append

    times = []
    for _ in range(runs):
        sid = make_session()
        rec = Recorder(sid, record_input=True)
        start = time.process_time()
        for i in range(0, len(data), CHUNK):
            rec.output(data[i : i + CHUNK])
            if rec.backlog >= 256 * 1024:
                recording_append(session_id=sid, batch=rec.take(), records_input=True)
                rec.written()
        recording_append(session_id=sid, batch=rec.take(), records_input=True)
        times.append(time.process_time() - start)
    print(f"  {'output + recording_append (all)':<38} {statistics.median(times) * 1000 / (len(data) / MB):7.1f} ms CPU per MB "
          "(this process only, not the database server)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="ephemera-bench-recorder-")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp}/bench.sqlite3")
    os.environ.update(DJANGO_SETTINGS_MODULE="portal.settings", EPHEMERA_DEMO="1", EPHEMERA_VAR_DIR=tmp, LOG_LEVEL="WARNING")
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    postgres = connection.vendor == "postgresql"
    old_name = ""
    if postgres:
        old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    else:
        call_command("migrate", verbosity=0)
    try:
        size = args.mb * MB
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"{os.cpu_count()} CPUs, load average {load}, database {connection.vendor}")
        kinds = {"seq": seq_text(size), "mixed": mixed_text(size).replace(b"\n", b"\r\n")[:size]}
        for name, data in kinds.items():
            steps(name, data, args.runs)
            append_cost(data, args.runs)
        for name, data in kinds.items():
            off = statistics.median(asyncio.run(relay(data)) for _ in range(args.runs))
            on = statistics.median(asyncio.run(relay(data, sid=make_session())) for _ in range(args.runs))
            print(f"relay {name:<5} in process (pump, acking client): recording off {off:.1f} MB/s, on {on:.1f} MB/s ({on / off:.2f})")
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            append_cost(kinds["seq"], 1)  # in this thread: the relay's writes run on the writer's
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
    finally:
        if postgres:

            from sessions.recording import live

            live.close_writer_connection()  # the writer thread's own connection
            connection.creation.destroy_test_db(old_name, verbosity=0)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
