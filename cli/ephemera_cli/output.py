"""Printing for people: tables, times, durations, and text from the portal made safe to print.

Reasons, comments and revoke messages are typed by other users; printed raw, an escape
sequence in one could rewrite the reader's terminal (retitle it, hide text, fake a prompt).
Every such string goes through `clean` before it reaches a terminal; `-o json` output is
escaped by the JSON encoder instead.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from ephemera_cli.errors import CliError, Exit

_DURATION = re.compile(r"(\d+)(h|m|s)")


def clean(text: str) -> str:
    """One line of printable text: control and format characters (C0, C1, bidi overrides,
    zero-width) become a space or go, so nothing in it drives the terminal."""
    out = []
    for ch in str(text):
        category = unicodedata.category(ch)
        if category == "Cc" or category in ("Zl", "Zp"):
            out.append(" ")
        elif category == "Cf":
            continue
        else:
            out.append(ch)
    return "".join(out).strip()


def _seconds(raw: str) -> int | None:
    """`1h30m`, `90s`, `15m` -> seconds; None when it isn't such a duration."""
    pos, seconds = 0, 0
    for match in _DURATION.finditer(raw):
        if match.start() != pos:
            return None
        seconds += int(match.group(1)) * {"h": 3600, "m": 60, "s": 1}[match.group(2)]
        pos = match.end()
    return seconds if raw and pos == len(raw) else None


def parse_minutes(text: str) -> int:
    """`30m`, `1h`, `1h30m`, `90` (minutes), `3600s` -> whole minutes (kubectl-like durations)."""
    raw = text.strip().lower()
    seconds = int(raw) * 60 if raw.isdigit() else _seconds(raw)
    if seconds is None:
        raise CliError(f"{text!r} is not a duration; give e.g. 30m, 1h or 1h30m", Exit.USAGE)
    if seconds % 60:
        raise CliError(f"{text!r} is not whole minutes; sessions are granted by the minute", Exit.USAGE)
    if seconds < 60:
        raise CliError(f"{text!r}: the duration must be at least a minute", Exit.USAGE)
    return seconds // 60


def parse_seconds(text: str) -> float:
    """`--wait-timeout`: `10m`, `90s`, `1h`; a bare number is seconds."""
    raw = text.strip().lower()
    seconds = int(raw) if raw.isdigit() else _seconds(raw)
    if seconds is None:
        raise CliError(f"{text!r} is not a duration; give e.g. 90s or 10m", Exit.USAGE)
    return float(seconds)


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def span(seconds: float) -> str:
    """A duration as people say it: 45s, 12m, 1h05m, 3d."""
    s = int(abs(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d"


def age(value: Any, now: datetime | None = None) -> str:
    when = parse_time(value)
    if when is None:
        return "-"
    return span(((now or datetime.now(UTC)) - when).total_seconds())


def until(value: Any, now: datetime | None = None) -> str:
    """`14:32 (in 29m)` for a future time, `14:02 (3m ago)` for a past one."""
    when = parse_time(value)
    if when is None:
        return "-"
    delta = (when - (now or datetime.now(UTC))).total_seconds()
    clock = when.astimezone().strftime("%H:%M")
    return f"{clock} (in {span(delta)})" if delta >= 0 else f"{clock} ({span(delta)} ago)"


def target(req: dict[str, Any]) -> str:
    if req.get("kind") == "node" or req.get("node"):
        return f"node/{req.get('node', '')}"
    where = f"{req.get('namespace', '')}/{req.get('pod', '')}:{req.get('container', '')}"
    return f"copy of {where}" if req.get("kind") == "copy" else where


def table(rows: Sequence[Sequence[str]], headers: Sequence[str], out: TextIO | None = None) -> None:
    """kubectl-style columns: upper-case headers, two spaces apart, the last one unpadded."""
    out = out or sys.stdout
    cells = [[clean(c) for c in headers], *[[clean(str(c)) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for row in cells:
        line = "  ".join(c.ljust(w) for c, w in zip(row[:-1], widths[:-1], strict=True))
        out.write((line + "  " if line else "") + row[-1] + "\n")


def shorten(text: Any, width: int = 40) -> str:
    line = clean(str(text or ""))
    return line if len(line) <= width else line[: width - 1] + "…"
