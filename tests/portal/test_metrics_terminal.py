"""The terminal's numbers, counted in the consumer: websockets open, bytes typed and sent; and
its log lines carry the session id and user."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from prometheus_client import REGISTRY

from sessions.bridge import protocol
from tests.sessions import conftest as terminal
from tests.sessions.conftest import open_term

# The terminal tests' fixtures (kubesim, personas, a running session), used here as they are.
term_kube, term_users, term_session = terminal.term_kube, terminal.term_users, terminal.term_session

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_terminal_counts_its_websocket_and_its_bytes(term_session: Any, term_users: Any) -> None:
    open_before = sample("ephemera_terminal_websockets")
    accepted = sample("ephemera_terminal_websocket_connections_total")
    typed = sample("ephemera_terminal_bytes_total", direction="in")
    sent = sample("ephemera_terminal_bytes_total", direction="out")

    term, connected = await open_term(term_session, user=term_users.alice)
    assert connected
    try:
        await term.until(lambda: any(s["event"] == "connected" for s in term.statuses))
        assert sample("ephemera_terminal_websockets") == open_before + 1
        assert sample("ephemera_terminal_websocket_connections_total") == accepted + 1
        command = "echo metrics-$((40+2))\r"
        await term.type(command)
        await term.expect_output(b"metrics-42")
    finally:
        await term.close()
    # Output the consumer sent after the last read (the shell's next prompt) is still queued for
    # the client: it counts too.
    received = term.received
    while not term.comm.output_queue.empty():
        frame = term.comm.output_queue.get_nowait().get("bytes") or b""
        if frame[:1] == bytes([protocol.OUTPUT]):
            received += len(frame) - 1

    assert sample("ephemera_terminal_websockets") == open_before
    assert sample("ephemera_terminal_bytes_total", direction="in") - typed == len(command)
    # Everything the browser got from the stream (not the replayed screen: none on a first connect).
    assert sample("ephemera_terminal_bytes_total", direction="out") - sent == received


async def test_a_refused_terminal_is_not_left_counted_as_open(term_session: Any, term_users: Any) -> None:
    open_before = sample("ephemera_terminal_websockets")
    term, _ = await open_term(term_session, user=term_users.eve)  # not hers: accepted, then closed
    await term.until_closed()
    await term.close()
    assert sample("ephemera_terminal_websockets") == open_before


async def test_terminal_log_lines_name_the_session_and_user(term_session: Any, term_users: Any,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from portal.json_logging import LogContextFilter
    from sessions import consumers

    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    real_notice = consumers.recording.notice

    def notice() -> str:  # called by the consumer's connect, after the access check
        consumers.log.warning("inside the terminal")
        return real_notice()

    monkeypatch.setattr(consumers.recording, "notice", notice)
    handler = Keep()
    handler.addFilter(LogContextFilter())
    consumers.log.addHandler(handler)
    try:
        term, _ = await open_term(term_session, user=term_users.alice)
        await term.until(lambda: any(s["event"] == "connected" for s in term.statuses))
        await term.close()
        consumers.log.warning("outside any terminal")
    finally:
        consumers.log.removeHandler(handler)
    inside = next(r for r in seen if r.getMessage() == "inside the terminal")
    assert inside.session_id == str(term_session.pk)  # type: ignore[attr-defined]
    assert inside.user == "alice"  # type: ignore[attr-defined]
    assert inside.request_id.startswith("ws-")  # type: ignore[attr-defined]
    outside = seen[-1]
    assert (outside.session_id, outside.user, outside.request_id) == (None, None, None)  # type: ignore[attr-defined]
