"""403 and 404 pages say why and where to go; the log gets one line per refusal, no traceback.

They were Django's bare text, and the helpful reason ("Only approvers can see the approvals
queue") reached only the server log, inside a traceback. The JSON API's refusals stay JSON.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from typing import Any

import pytest
from django.test import Client, RequestFactory
from django.urls import reverse
from django.views.defaults import server_error

from portal.log_filters import RefusalWithoutTraceback

pytestmark = pytest.mark.django_db


def _client(user: Any) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def _assert_csp_clean(resp: Any) -> None:
    """A styled page the strict CSP lets through: no inline script or style, the policy sent."""
    html = resp.content.decode()
    assert "Content-Security-Policy" in resp.headers
    assert 'href="/static/ephemera/app.css"' in html  # styled like every other page
    assert all('src="' in tag for tag in re.findall(r"<script\b[^>]*>", html)), "inline <script>"
    assert "<style" not in html and " style=" not in html


def _request_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "django.request"]


def test_a_403_page_says_why_and_where_to_go(alice: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        resp = _client(alice).get(reverse("approvals"))
    assert resp.status_code == 403
    assert [t.name for t in resp.templates][:2] == ["403.html", "portal/base.html"]
    html = resp.content.decode()
    assert "Only approvers can see the approvals queue" in html
    assert f'href="{reverse("home")}"' in html
    assert f'href="{reverse("login")}?next=/approvals/"' in html  # log in as another user, back here after
    assert "Signed in as <strong>alice</strong>" in html
    _assert_csp_clean(resp)
    # One warning line, with the path and the reason, and no traceback.
    records = _request_records(caplog)
    assert len(records) == 1, [r.getMessage() for r in records]
    record = records[0]
    assert record.levelno == logging.WARNING and not record.exc_info and not record.exc_text
    assert record.getMessage() == "Forbidden (Permission denied): /approvals/ (Only approvers can see the approvals queue)"
    assert "Traceback" not in caplog.text


def test_a_404_page_for_a_request_that_is_not_yours(alice: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        resp = _client(alice).get(reverse("request_detail", args=[uuid.uuid4()]))
    assert resp.status_code == 404
    assert resp.templates[0].name == "404.html"
    html = resp.content.decode()
    # Not there, or not yours: the page can't tell which, on purpose (ids of others leak nothing).
    assert "doesn't exist, or it isn't yours to see" in html
    assert f'href="{reverse("home")}"' in html and f'href="{reverse("login")}?next=' in html
    _assert_csp_clean(resp)
    records = _request_records(caplog)
    assert len(records) == 1 and not records[0].exc_info
    assert records[0].getMessage().startswith("Not Found: /requests/")
    assert "Traceback" not in caplog.text


def test_a_404_for_an_unknown_address_shows_no_internals(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        resp = _client(None).get("/no/such/page")
    assert resp.status_code == 404
    html = resp.content.decode()
    assert "Resolver404" not in html and "tried" not in html
    assert f'href="{reverse("login")}?next=/no/such/page"' in html
    _assert_csp_clean(resp)
    records = _request_records(caplog)
    # The resolver's list of patterns tried is no reason to log.
    assert [r.getMessage() for r in records] == ["Not Found: /no/such/page"]
    assert not records[0].exc_info


def test_api_refusals_stay_json(alice: Any, api_client_for: Any, make_request: Any, caplog: pytest.LogCaptureFixture) -> None:
    req = make_request(alice)
    client = api_client_for(alice)
    with caplog.at_level(logging.INFO):
        refused = client.post(f"/api/v1/requests/{req.pk}/approve", {"comment": "me"}, format="json")
        missing = client.get(f"/api/v1/requests/{uuid.uuid4()}")
    assert refused.status_code == 403 and refused["Content-Type"] == "application/json"
    assert "detail" in refused.json()
    assert missing.status_code == 404 and missing.json() == {"detail": "No such request."}
    assert "Traceback" not in caplog.text


def test_the_500_page_stands_alone(rf: RequestFactory) -> None:
    # Rendered without the request (Django's server_error), so it must not need one.
    resp = server_error(rf.get("/"))
    assert resp.status_code == 500
    html = resp.content.decode()
    assert "Something went wrong" in html and 'href="/"' in html
    assert 'href="/static/ephemera/app.css"' in html
    assert all('src="' in tag for tag in re.findall(r"<script\b[^>]*>", html))
    assert "<style" not in html and " style=" not in html


def _record(status: int, exc: BaseException) -> logging.LogRecord:
    try:
        raise exc
    except BaseException:
        exc_info = sys.exc_info()
    record = logging.LogRecord("django.request", logging.WARNING, __file__, 1, "Forbidden: %s", ("/x",), exc_info)
    record.status_code = status
    return record


def test_server_errors_keep_their_traceback() -> None:
    record = _record(500, RuntimeError("boom"))
    assert RefusalWithoutTraceback().filter(record)
    assert record.exc_info and record.getMessage() == "Forbidden: /x"


def test_a_reason_cannot_forge_log_lines() -> None:
    from django.core.exceptions import PermissionDenied

    record = _record(403, PermissionDenied("no\nFAKE 2024 INFO admin logged in"))
    assert RefusalWithoutTraceback().filter(record)
    assert "\n" not in record.getMessage() and not record.exc_info
    assert record.getMessage() == "Forbidden: /x (no\\nFAKE 2024 INFO admin logged in)"
