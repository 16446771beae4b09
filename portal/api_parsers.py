"""The API's JSON parser: DRF's, minus the bodies that crashed the portal before any view ran.

- Nesting: Python's decoder recurses once per level, so 10,000 `[` raised RecursionError (a
  500), and a body just under the recursion limit leaves little stack for whatever walks it
  next. No API body is more than two levels deep, so anything past MAX_DEPTH is refused.
- Numbers: `1e999` parses to inf (then `int(inf)` raised OverflowError in the services) and
  DRF already refuses the NaN/Infinity literals; every non-finite number is refused here.

Each refusal is a 400 with {"detail": ...}, like DRF's own parse errors. (Size is already
bounded: DRF hands JSON parsers request.body, which enforces DATA_UPLOAD_MAX_MEMORY_SIZE.)
"""

from __future__ import annotations

import json
import math
from typing import IO, Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser, get_encoding

MAX_DEPTH = 64


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is out of range: numbers must be finite")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number: numbers must be finite")


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """True if arrays/objects nest more than `limit` levels (the top one counts). No recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


class StrictJSONParser(JSONParser):
    """JSON bodies only as deep and as finite as the API can use."""

    def parse(self, stream: IO[bytes] | None, media_type: str | None = None, parser_context: Any = None) -> Any:
        encoding = get_encoding(parser_context or {})
        if stream is None:
            return None
        try:
            data = json.loads(stream.read().decode(encoding), parse_float=_finite_float, parse_constant=_no_constant)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested more than {MAX_DEPTH} levels deep.") from None
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise ParseError(f"JSON parse error - {exc}") from None
        if isinstance(data, dict | list) and too_deep(data):
            raise ParseError(f"JSON parse error - nested more than {MAX_DEPTH} levels deep.")
        return data
