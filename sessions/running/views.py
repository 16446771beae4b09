"""The running-sessions page: every session in the viewer's scope that runs now, live.

"Live" by polling: the page (frontend/src/running.ts) fetches the list fragment every few
seconds, as a background request (X-Ephemera-Background), and swaps it in only when its
version changed. Polling rather than a websocket: what the list shows (who is watching, time
limits, extensions, ends) changes in several processes and apps, the same fragment view
already decides who sees what, and no new channel-layer event has to reach every viewer.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from approvals.choices import RequestKind
from portal import permissions
from sessions.choices import SessionStatus
from sessions.running.selectors import RunningFilters, RunningRow, running_sessions

POLL_SECONDS = 5


def _version(rows: list[RunningRow]) -> str:
    """Changes exactly when the fragment would show something else (the countdown aside,
    which the browser runs), so an unchanged poll never touches what someone is typing."""
    facts = [
        [
            str(r.session.pk),
            r.session.status,
            r.session.expires_at.isoformat() if r.session.expires_at else "",
            r.watchers,
            str(r.pending_extension.pk) if r.pending_extension else "",
            r.can_watch,
            r.can_end,
            r.can_decide_extension,
            r.can_ask_extension,
        ]
        for r in rows
    ]
    return hashlib.sha256(json.dumps(facts).encode()).hexdigest()[:16]


def _context(request: HttpRequest) -> tuple[dict[str, Any], int]:
    filters, errors = RunningFilters.parse(request.GET)
    rows = [] if errors else running_sessions(request.user, filters)
    query = urlencode(filters.query())
    return (
        {
            "rows": rows,
            "filters": filters,
            "errors": errors,
            "version": _version(rows),
            "list_url": reverse("sessions_running_list") + (f"?{query}" if query else ""),
            "statuses": SessionStatus.choices,
            "kinds": RequestKind.choices,
            "poll_seconds": POLL_SECONDS,
            "sees_all": permissions.can_see_all_sessions(request.user),
            "approves": permissions.is_approver(request.user),
        },
        400 if errors else 200,
    )


@login_required
@require_GET
def running_page(request: HttpRequest) -> HttpResponse:
    context, status = _context(request)
    return render(request, "sessions/running/page.html", context, status=status)


@login_required
@require_GET
def running_list(request: HttpRequest) -> HttpResponse:
    """The list alone, for the page's refresh (the same rows, rules and forms)."""
    context, status = _context(request)
    return render(request, "sessions/running/_list.html", context, status=status)
