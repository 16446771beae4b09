"""The whole flow on kubesim: request and approve over the JSON API, use the terminal over the
websocket, end the session, and the debug shell is gone from the cluster."""

from __future__ import annotations

import asyncio
import re
import time

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from sessions.bridge import protocol
from tests.sessions.conftest import TARGET_CONTAINER, nginx_pod, open_term, session_pids

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


def _api(token: str, method: str, path: str, data: dict | None = None) -> tuple[int, dict]:
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    if method == "post":
        resp = client.post(path, data or {}, content_type="application/json")
    else:
        resp = client.get(path)
    return resp.status_code, resp.json()


async def test_request_approve_debug_and_end(term_kube, term_users):
    from portal.tokens import create_token

    alice_token = await sync_to_async(create_token)(term_users.alice, "e2e")
    bob_token = await sync_to_async(create_token)(term_users.bob, "e2e")
    api = sync_to_async(_api)

    pod = await sync_to_async(nginx_pod)()
    code, req = await api(alice_token, "post", "/api/v1/requests", {
        "namespace": "default", "pod": pod, "container": TARGET_CONTAINER, "image": "busybox",
        "profile": "general", "reason": "e2e: nginx workers stuck", "duration_minutes": 15,
    })
    assert code == 201, req
    assert req["status"] == "pending"

    code, _ = await api(alice_token, "post", f"/api/v1/requests/{req['id']}/approve", {})
    assert code == 403  # nobody approves their own request
    code, approved = await api(bob_token, "post", f"/api/v1/requests/{req['id']}/approve", {"comment": "go"})
    assert code == 200, approved

    deadline = time.monotonic() + 60
    session: dict = {}
    while time.monotonic() < deadline:
        code, detail = await api(alice_token, "get", f"/api/v1/requests/{req['id']}")
        session = detail.get("session") or {}
        if session.get("status") == "running":
            break
        assert session.get("status") in (None, "provisioning"), session
        await asyncio.sleep(0.3)
    assert session.get("status") == "running", session
    sid = session["id"]

    class _S:  # what open_term needs: the session's primary key
        pk = sid

    term, connected = await open_term(_S, token=alice_token, origin=None)
    try:
        assert connected
        await term.until(lambda: any(s["event"] == "connected" for s in term.statuses))
        await term.resize(200, 50)
        ps = await term.run("ps aux", "ps")
        assert b"nginx: master process" in ps, ps
        assert b"nginx: worker process" in ps, ps
        # The target's PID namespace (kubesim isolates as a kubelet does): its master is PID 1,
        # and nothing of the machine running the test is in the list.
        assert re.search(rb"^\s*1\s+\S+\s+nginx: master process", ps, re.M), ps
        assert b"daphne" not in ps and b"pytest" not in ps and b"kubesim" not in ps, ps
        assert session_pids(sid), "the debug shell should run with EPHEMERA_SESSION=<id>"

        code, ended = await api(alice_token, "post", f"/api/v1/sessions/{sid}/end", {})
        assert code == 200, ended
        assert ended["status"] == "ended"
        assert await term.until_closed(15) == protocol.CLOSE_GONE
        assert any(s["event"] == "ended" for s in term.statuses)
    finally:
        await term.close()

    deadline = time.monotonic() + 15
    while session_pids(sid) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert session_pids(sid) == []

    again, _ = await open_term(_S, token=alice_token, origin=None)
    try:
        assert await again.until_closed(10) == protocol.CLOSE_GONE
    finally:
        await again.close()
