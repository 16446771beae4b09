"""Whom each cluster call is for, in the User-Agent that the apiserver's audit log keeps.

Ephemera acts with its own service account, so the cluster's audit log alone would say only
"ephemera did it". Every call made for a session (provisioning, the terminal's attach, the
stop's exec, a node pod's deletion) carries instead

    ephemera/<version> (session <id>; for <requester>)

and an auditor of the cluster can tell whom each debug action was for. A request's checks
before there is a session (its dry runs) say `ephemera/<version> (for <requester>)`; calls for
no one (lists for the request form, oversight scans, /readyz) say `ephemera/<version>`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

VERSION = "0.1.0"  # pyproject.toml's
BASE = f"ephemera/{VERSION}"

_current: ContextVar[str] = ContextVar("ephemera_user_agent", default=BASE)


def _token(value: str) -> str:
    # A header value, and no way to forge the format: only characters usernames and UUIDs use.
    return re.sub(r"[^A-Za-z0-9._@+-]", "_", value)[:150] or "_"


def for_session(session_id: object, requester: str) -> str:
    return f"{BASE} (session {_token(str(session_id))}; for {_token(requester)})"


def for_requester(requester: str) -> str:
    """Before there is a session: a request's checks (its dry runs) name whom they are for."""
    return f"{BASE} (for {_token(requester)})"


def current() -> str:
    """The User-Agent for a call made now (context-local: threads and tasks each have theirs)."""
    return _current.get()


@contextmanager
def acting_for(session_id: object | None, requester: str) -> Iterator[str]:
    """Every cluster call inside says it is for this session (if any yet) and this requester."""
    token = _current.set(for_session(session_id, requester) if session_id is not None else for_requester(requester))
    try:
        yield _current.get()
    finally:
        _current.reset(token)
