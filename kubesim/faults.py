"""Fault injection rules set by tests through POST /_kubesim/faults."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

from kubesim.errors import bad_request, generic


@dataclass
class Fault:
    method: str | None
    path: re.Pattern[str]
    status: int | None
    message: str
    delay: float
    times: int | None  # None: forever

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.method and self.method.upper() != method.upper():
            return False
        return self.path.search(path) is not None


def parse_fault(body: Any) -> Fault:
    if not isinstance(body, dict):
        raise bad_request("fault must be a JSON object")
    try:
        pattern = re.compile(str(body.get("path") or ".*"))
    except re.error as e:
        raise bad_request(f"invalid path regex: {e}") from e
    status = body.get("status")
    delay = float(body.get("delay") or 0)
    if status is None and not delay:
        raise bad_request("a fault needs a status, a delay or both")
    times = body.get("times")
    return Fault(
        method=body.get("method"),
        path=pattern,
        status=int(status) if status is not None else None,
        message=str(body.get("message") or f"kubesim injected fault ({status})"),
        delay=delay,
        times=int(times) if times is not None else None,
    )


class Faults:
    def __init__(self) -> None:
        self.rules: list[Fault] = []

    def add(self, fault: Fault) -> None:
        self.rules.append(fault)

    def clear(self) -> None:
        self.rules.clear()

    async def apply(self, method: str, path: str) -> None:
        """Delay and/or raise for the first matching rule; returns normally to serve the request."""
        for rule in self.rules:
            if rule.matches(method, path):
                if rule.times is not None:
                    rule.times -= 1
                if rule.delay:
                    await asyncio.sleep(rule.delay)
                if rule.status is not None:
                    raise generic(rule.status, rule.message)
                return

    def describe(self) -> list[dict[str, Any]]:
        return [
            {
                "method": r.method,
                "path": r.path.pattern,
                "status": r.status,
                "message": r.message,
                "delay": r.delay,
                "times": r.times,
            }
            for r in self.rules
        ]
