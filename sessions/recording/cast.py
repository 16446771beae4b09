"""asciicast v2 pieces: event lines, the header, and following typed lines into commands.

Events are `[seconds, code, text]` with code "o" (output), "i" (input), "r" (resize,
"COLSxROWS") or "m" (marker). Text must be valid UTF-8, so each byte stream goes through an
incremental decoder: a multibyte character split across chunks is held back until its last
byte arrives, never replaced. Bytes that are not UTF-8 at all become U+FFFD, which is also
what the browser terminal showed for them.
"""

from __future__ import annotations

import codecs
import json
from datetime import datetime

MAX_COMMAND = 2000


def utf8_decoder() -> codecs.IncrementalDecoder:
    return codecs.getincrementaldecoder("utf-8")(errors="replace")


def event_line(t: float, code: str, text: str) -> str:
    return json.dumps([round(t, 6), code, text], ensure_ascii=False) + "\n"


def header_line(*, width: int | None, height: int | None, started_at: datetime, title: str) -> str:
    header = {
        "version": 2,
        "width": width or 80,
        "height": height or 24,
        "timestamp": int(started_at.timestamp()),
        "title": title,
        "env": {"TERM": "xterm-256color"},
    }
    return json.dumps(header, ensure_ascii=False) + "\n"


class LineTracker:
    """Rebuilds the command line from keystrokes, as a shell's line editor would (roughly).

    Handles printable text, backspace, Ctrl-U (kill line), Ctrl-W (kill word), Ctrl-C
    (abandon line) and skips escape sequences (arrow keys, bracketed-paste marks). Tab
    completion and history recall happen in the shell and are not resolved.
    """

    def __init__(self) -> None:
        self.line: list[str] = []
        self._esc = ""  # "" outside an escape sequence, else "esc", "csi" or "ss3"

    def feed(self, text: str) -> list[str]:
        done: list[str] = []
        for ch in text:
            if self._esc:
                if self._esc == "esc":
                    self._esc = "csi" if ch == "[" else "ss3" if ch == "O" else ""
                elif self._esc == "ss3" or "\x40" <= ch <= "\x7e":
                    self._esc = ""
                continue
            if ch == "\x1b":
                self._esc = "esc"
            elif ch in "\r\n":
                command = "".join(self.line).strip()
                self.line.clear()
                if command:
                    done.append(command[:MAX_COMMAND])
            elif ch in "\x7f\x08":
                if self.line:
                    self.line.pop()
            elif ch in "\x15\x03":
                self.line.clear()
            elif ch == "\x17":
                while self.line and self.line[-1] == " ":
                    self.line.pop()
                while self.line and self.line[-1] != " ":
                    self.line.pop()
            elif ch == "\t" or ch >= " ":
                if len(self.line) < MAX_COMMAND:
                    self.line.append(ch)
        return done
