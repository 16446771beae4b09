"""Review pages: the session history, the review parts of the session page, mark reviewed, watch."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from approvals.choices import Profile
from portal import permissions
from portal.audit import AuditOrigin
from portal.validators import FORBIDDEN_CHARACTERS_MESSAGE, forbidden_character_errors, forbidden_character_messages
from sessions import selectors as session_selectors
from sessions.choices import LIVE_STATUSES, SessionStatus
from sessions.models import DebugSession
from sessions.recording import selectors as recording_selectors
from sessions.review import selectors, services

PAGE_SIZE = 50


def review_context(user: Any, session: DebugSession) -> dict[str, Any]:
    """What the session page shows for reviewing, by role (merged into its context)."""
    can_recording = permissions.can_view_recording(user, session)
    ended = session.status not in LIVE_STATUSES
    ctx: dict[str, Any] = {
        "decisions": selectors.decisions(session),
        "can_view_recording": can_recording,
        "can_review": ended and permissions.can_review_session(user, session),
        "can_watch": permissions.can_watch_session(user, session) and session.request.requester_id != user.pk,
        "reviews": selectors.reviews(session),
    }
    if can_recording:
        ctx["timeline"] = selectors.timeline(session)
        recording = recording_selectors.recording_of(str(session.pk))
        ctx["recording"] = recording
        if recording is not None and ended:
            commands = recording_selectors.commands_of(str(session.pk))
            ctx["commands"] = commands
            ctx["replay_data"] = {
                "cast_url": reverse("api-session-recording", kwargs={"pk": session.pk}),
                "commands": [{"t": c.t, "text": c.text} for c in commands],
                # Files that moved, as markers on the replay's timeline next to the commands.
                "transfers": transfer_markers(session, recording.started_at),
            }
    return ctx


def transfer_markers(session: DebugSession, started_at: Any) -> list[dict[str, Any]]:
    from sessions.files.models import FileTransfer

    markers = []
    for t in FileTransfer.objects.filter(session=session).order_by("started_at"):
        arrow = "↓" if t.direction == FileTransfer.Direction.DOWNLOAD else "↑"
        what = f"{t.size} bytes, sha256 {t.sha256[:12]}…" if t.outcome == FileTransfer.Outcome.DONE else t.get_outcome_display()
        markers.append({"t": max(0.0, (t.started_at - started_at).total_seconds()), "text": f"{arrow} {t.path} ({what})"})
    return markers


def _visible(user: Any, session_id: Any) -> DebugSession:
    try:
        return session_selectors.get_visible_session(user, session_id)
    except DebugSession.DoesNotExist:
        raise Http404("No such session") from None


@login_required
@require_POST
def session_review(request: HttpRequest, session_id: Any) -> HttpResponse:
    session = _visible(request.user, session_id)
    if problems := forbidden_character_messages({"note": request.POST.get("note", "")}):
        messages.error(request, " ".join(problems))
        return redirect("session_detail", session_id=session.pk)
    try:
        services.session_mark_reviewed(
            session_id=session.pk,
            reviewer=request.user,
            note=request.POST.get("note", ""),
            origin=AuditOrigin.from_request(request),
        )
    except PermissionDenied:
        messages.error(request, "Only auditors and admins may review sessions, and not their own.")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Marked reviewed.")
    return redirect("session_detail", session_id=session.pk)


@login_required
@require_GET
def session_watch(request: HttpRequest, session_id: Any) -> HttpResponse:
    session = _visible(request.user, session_id)
    if not permissions.can_watch_session(request.user, session):
        raise PermissionDenied("Approvers, auditors and admins may watch a running session.")
    return render(request, "sessions/review/watch.html", {"session": session, "debug_request": session.request})


def _date(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


_TEXT_FILTERS = ("user", "cluster", "namespace", "pod", "node", "status", "reviewed", "command", "profile")


def _filters(params: Any) -> selectors.HistoryFilters:
    text = {k: str(params.get(k, "")).strip()[:253] for k in _TEXT_FILTERS}
    if text["status"] not in SessionStatus.values:
        text["status"] = ""
    if text["reviewed"] not in ("yes", "no"):
        text["reviewed"] = ""
    if text["profile"] not in Profile.values:
        text["profile"] = ""
    return selectors.HistoryFilters(**text, since=_date(params.get("since", "")), until=_date(params.get("until", "")))


@login_required
@require_GET
def session_history(request: HttpRequest) -> HttpResponse:
    # A filter no database can take (NUL) is a 400 naming it, with an empty list; the form is
    # shown again without that value. Other bad values are ignored, as before.
    given = {k: request.GET.get(k, "") for k in (*_TEXT_FILTERS, "since", "until", "after", "before")}
    problems = list(forbidden_character_errors(given))
    params = request.GET.copy()
    for key in problems:
        params.pop(key, None)
        messages.error(request, f"The {key} filter {FORBIDDEN_CHARACTERS_MESSAGE}.")
    filters = _filters(params)
    # Keyset pages: the links carry the cursor of the row to continue after (older) or before
    # (newer); a bad or old-style value (`page=500`) just gives the first page.
    after = selectors.Cursor.decode(params.get("after", ""))
    before = selectors.Cursor.decode(params.get("before", ""))
    if problems:
        page = selectors.HistoryPage.empty()
    else:
        page = selectors.history_page(request.user, filters, size=PAGE_SIZE, after=after, before=before)
    query = params.copy()
    for key in ("page", "after", "before"):
        query.pop(key, None)
    return render(
        request,
        "sessions/review/history.html",
        {
            "page": page,
            "filters": filters,
            "query": query.urlencode(),
            "statuses": SessionStatus.choices,
            "profiles": Profile.choices,
            "sees_all": permissions.can_see_all_sessions(request.user),
        },
        status=400 if problems else 200,
    )
