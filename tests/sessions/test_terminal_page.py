"""The session page: who sees it, and who gets the terminal."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db(transaction=True)


def _get(user, path):  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client.get(path)


def test_the_requester_gets_the_terminal(term_session, term_users):
    resp = _get(term_users.alice, f"/sessions/{term_session.pk}/")
    assert resp.status_code == 200
    body = resp.content.decode()
    assert 'id="terminal"' in body and "ephemera/terminal.js" in body and 'id="end-session"' in body
    assert term_session.container_name in body
    assert "csrfmiddlewaretoken" in body


@pytest.mark.parametrize("persona", ["bob", "dave", "admin"])
def test_others_who_may_see_get_status_only(term_session, term_users, persona):
    resp = _get(getattr(term_users, persona), f"/sessions/{term_session.pk}/")
    assert resp.status_code == 200
    assert 'id="terminal"' not in resp.content.decode()


def test_it_hides_the_session_from_other_users(term_session, term_users):
    assert _get(term_users.eve, f"/sessions/{term_session.pk}/").status_code == 404
    assert _get(term_users.eve, f"/sessions/{term_session.pk}/status.json").status_code == 404


def test_anonymous_is_sent_to_login(term_session):
    resp = Client().get(f"/sessions/{term_session.pk}/")
    assert resp.status_code == 302 and "/login/" in resp["Location"]


def test_the_status_endpoint_reports_progress(term_session, term_users):
    data = _get(term_users.bob, f"/sessions/{term_session.pk}/status.json").json()
    assert data["status"] == "running" and data["expires_at"]
