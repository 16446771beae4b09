"""`kubectl ephemera play SESSION`: a session's recording (asciicast v2) replayed in this terminal.

The file is downloaded first (into a temporary file, not memory): no connection is held open
while the pauses play, and a refusal is known before anything is printed. Output events ("o")
are written raw: they are what the shell printed to the person at the time, escape sequences
and all, as `asciinema play` does. Markers ("m") are labels the portal added, so they are text
from the portal and go through `clean` like any other.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from collections.abc import Iterator
from typing import IO, Any, BinaryIO

from ephemera_cli import config
from ephemera_cli.client import Portal, PortalError
from ephemera_cli.commands import object_id
from ephemera_cli.errors import CliError, Exit
from ephemera_cli.output import clean

Event = tuple[float, str, str]


def _bad(line_no: int, why: str) -> CliError:
    return CliError(f"the recording is not a valid asciicast v2 file (line {line_no}: {why})", Exit.ERROR)


def read_cast(source: IO[bytes]) -> tuple[dict[str, Any], Iterator[Event]]:
    """The header, and the events one by one (a malformed line raises when reached)."""
    first = source.readline()
    try:
        header = json.loads(first)
    except ValueError:
        raise _bad(1, "the header is not JSON") from None
    if not isinstance(header, dict) or header.get("version") != 2:
        raise _bad(1, "the header is not an asciicast version 2 header")

    def events() -> Iterator[Event]:
        for line_no, raw in enumerate(source, start=2):
            if not raw.strip():
                continue
            try:
                event = json.loads(raw)
            except ValueError:
                raise _bad(line_no, "not JSON") from None
            if (not isinstance(event, list) or len(event) != 3 or isinstance(event[0], bool)
                    or not isinstance(event[0], int | float) or not isinstance(event[1], str)
                    or not isinstance(event[2], str)):
                raise _bad(line_no, "an event is [time, code, data]")
            yield float(event[0]), event[1], event[2]

    return header, events()


def _write(out: BinaryIO, text: str) -> None:
    # Lone surrogates (a JSON "\udXXX" escape) can't be encoded; the terminal gets U+FFFD instead.
    out.write(text.encode("utf-8", "replace"))
    out.flush()


def marker_line(label: str) -> str:
    return f"\r\n[ephemera] marker: {clean(label)}\r\n"


async def replay(events: Iterator[Event], out: BinaryIO, *, speed: float, idle_limit: float | None, wait: bool) -> None:
    """Output and markers at their recorded times (pauses capped at idle_limit, then / speed)."""
    previous: float | None = None
    for t, code, data in events:
        if code not in ("o", "m"):
            continue  # "i" (keystrokes: their echo is in "o") and "r" (resize) are not shown
        if wait and previous is not None and t > previous:
            pause = t - previous
            if idle_limit is not None:
                pause = min(pause, idle_limit)
            await asyncio.sleep(pause / speed)
        previous = t if previous is None else max(previous, t)
        _write(out, data if code == "o" else marker_line(data))


def dump_json(header: dict[str, Any], events: Iterator[Event], out: IO[str]) -> None:
    """JSON lines, the header first: ensure_ascii escapes every control character."""
    out.write(json.dumps(header) + "\n")
    for event in events:
        out.write(json.dumps(list(event)) + "\n")
    out.flush()


def _positive(flag: str, value: float) -> None:
    if not value > 0:
        raise CliError(f"{flag} must be more than 0", Exit.USAGE)


async def play(args: argparse.Namespace) -> Exit:
    sid = object_id(args.session, "session")
    _positive("--speed", args.speed)
    if args.idle_limit < 0:
        raise CliError("--idle-limit must be 0 (no cap) or more", Exit.USAGE)
    with tempfile.TemporaryFile() as cast:
        async with Portal(config.load()) as api:
            try:
                await api.download(f"/api/v1/sessions/{sid}/recording.cast", cast)
            except PortalError as exc:
                if exc.status == 404:
                    raise CliError(f"no recording of session {sid} ({exc.message}); list sessions: "
                                   "kubectl ephemera get sessions --status ended") from None
                raise
        cast.seek(0)
        header, events = read_cast(cast)
        if args.output == "json":
            dump_json(header, events, sys.stdout)
            return Exit.OK
        if not args.no_wait:
            width, height = header.get("width"), header.get("height")
            size = f", {width}x{height}" if isinstance(width, int) and isinstance(height, int) else ""
            print(f"Playing session {sid} ({clean(str(header.get('title') or ''))}{size}); Ctrl-C stops.",
                  file=sys.stderr, flush=True)
        await replay(events, sys.stdout.buffer, speed=args.speed, idle_limit=args.idle_limit or None,
                     wait=not args.no_wait)
    return Exit.OK
