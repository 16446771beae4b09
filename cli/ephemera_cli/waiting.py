"""From a request to a running session: follow it on the portal and tell the user what happens.

Polls the request (once a second) because that is what the public API offers; prints a line
whenever something changes (a decision, the provisioning progress), so a log of the wait reads
like the approver's queue. Every way it can end has its own exit code.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from datetime import UTC, datetime
from typing import Any

from ephemera_cli.client import Portal, PortalError
from ephemera_cli.errors import CliError, Exit
from ephemera_cli.output import clean, parse_time, span

POLL_SECONDS = 1.0


def note(text: str) -> None:
    # Progress goes to stderr (like kubectl debug's own notes), stdout stays the shell's.
    print(text, file=sys.stderr, flush=True)


def approvals_line(req: dict[str, Any]) -> str:
    policy = req.get("policy") or {}
    groups = ", ".join(clean(g) for g in policy.get("approver_groups") or []) or "approvers"
    return f"{policy.get('approvals', 0)} of {policy.get('approvals_required', req.get('approvals_required', '?'))} approvals from {groups}"


def session_gone(session: dict[str, Any]) -> CliError:
    """A session that can no longer be attached, as the error to exit with."""
    sid, status = session.get("id"), session.get("status")
    if status == "failed":
        return CliError(f"the debug container didn't start: {clean(session.get('failure_message') or 'no reason given')}")
    reason = session.get("end_reason") or ""
    words = f"session {sid} has ended ({clean(reason) or status})"
    if reason == "expired":
        return CliError(f"{words}: its time ran out; ask again with kubectl ephemera debug", Exit.EXPIRED)
    if reason in ("revoked", "admin"):
        return CliError(f"{words}; ask the approver why, or ask again with kubectl ephemera debug", Exit.REVOKED)
    return CliError(f"{words}; ask again with kubectl ephemera debug")


class Waiter:
    """Follows one request until its session runs (`await waiter.session()`)."""

    def __init__(self, api: Portal, request_id: str, *, timeout: float | None, withdraw_on_interrupt: bool) -> None:
        self.api = api
        self.request_id = request_id
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.timeout = timeout
        self.withdraw = withdraw_on_interrupt
        self.seen_decisions = 0
        self.last_line = ""
        self.interrupted = asyncio.Event()

    def tell(self, line: str) -> None:
        if line != self.last_line:
            note(line)
            self.last_line = line

    async def session(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, self.interrupted.set)
        try:
            return await self._follow()
        finally:
            loop.remove_signal_handler(signal.SIGINT)

    async def _follow(self) -> dict[str, Any]:
        expiry_checked = False
        while True:
            req = await self.api.get(f"/api/v1/requests/{self.request_id}")
            self._decisions(req)
            status = req.get("status")
            if status == "denied":
                raise CliError(f"request {self.request_id} was denied{self._by('deny', req)}", Exit.DENIED)
            if status == "cancelled":
                raise CliError(f"request {self.request_id} was withdrawn", Exit.DENIED)
            if status == "expired":
                raise CliError(f"request {self.request_id} expired before anyone decided; ask again, or ask an approver directly",
                               Exit.EXPIRED)
            if status == "pending":
                self.tell(f"Waiting for approval: {approvals_line(req)}. Ctrl-C {'withdraws the request' if self.withdraw else 'stops waiting'}.")
                # Reading one request doesn't expire it; listing requests does (the portal's
                # expire_pending): past its deadline, ask once so an unanswered request ends.
                expires = parse_time(req.get("expires_at"))
                if expires is not None and not expiry_checked and datetime.now(UTC) > expires:
                    expiry_checked = True
                    await self.api.get("/api/v1/requests")
                    continue
            elif status == "approved":
                session = req.get("session")
                if session is None:
                    self.tell("Approved; starting the debug container.")
                elif session.get("status") == "running":
                    return dict(session)
                elif session.get("status") == "provisioning":
                    self.tell(f"Starting the debug container: {clean(session.get('progress') or 'waiting for the cluster')}")
                else:
                    raise session_gone(session)
            await self._pause(req)

    def _decisions(self, req: dict[str, Any]) -> None:
        decisions = req.get("decisions") or []
        for d in decisions[self.seen_decisions :]:
            verb = "approved" if d.get("verdict") == "approve" else "denied"
            comment = clean(d.get("comment") or "")
            note(f"  {clean(d.get('approver') or '?')} {verb}{': ' + comment if comment else ''}")
        self.seen_decisions = max(self.seen_decisions, len(decisions))

    @staticmethod
    def _by(verdict: str, req: dict[str, Any]) -> str:
        for d in req.get("decisions") or []:
            if d.get("verdict") == verdict:
                comment = clean(d.get("comment") or "")
                return f" by {clean(d.get('approver') or '?')}" + (f": {comment}" if comment else "")
        return ""

    async def _pause(self, req: dict[str, Any]) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.interrupted.wait(), POLL_SECONDS)
        if self.interrupted.is_set():
            await self._interrupt(req)
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise CliError(
                f"still not running after {span(self.timeout or 0)} (request {self.request_id} is {req.get('status')}); "
                f"keep waiting with: kubectl ephemera attach {self.request_id}",
                Exit.TIMEOUT,
            )

    async def _interrupt(self, req: dict[str, Any]) -> None:
        if self.withdraw and req.get("status") == "pending":
            try:
                await self.api.post(f"/api/v1/requests/{self.request_id}/cancel")
            except PortalError as exc:
                if exc.status != 409:  # 409: decided meanwhile; say so below
                    raise
                raise CliError(f"interrupted; request {self.request_id} was decided meanwhile: see kubectl ephemera get requests "
                               f"{self.request_id}", Exit.INTERRUPTED) from None
            raise CliError(f"interrupted; withdrew request {self.request_id}", Exit.INTERRUPTED)
        raise CliError(f"interrupted; request {self.request_id} goes on: kubectl ephemera attach {self.request_id}", Exit.INTERRUPTED)
