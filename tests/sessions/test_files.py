"""Files out of a distroless target and into the debug container, through the API (issue 15).

Against kubesim with isolated containers: the target's bytes are read by the debug container
through /proc/1/root, as on a cluster, so what the profile grants decides (general: yes,
baseline: Permission denied).
"""

from __future__ import annotations

import io
import json
import re
import tarfile
from types import SimpleNamespace
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import Client
from rest_framework.test import APIClient

from approvals.policy.schema import parse
from kubesim.runtime.rootfs import NGINX_CONF
from kubesim.testing import debug_image
from portal.kube import get_client
from portal.models import AuditEvent
from sessions.files.models import FileTransfer
from sessions.models import DebugSession
from sessions.recording.selectors import iter_cast
from tests.sessions.conftest import create_running_session

pytestmark = [pytest.mark.timeout(120)]

POLICY = """
images: [busybox, "gcr.io/distroless/base:debug-nonroot"]
rules:
  - name: uploads
    match: {profile: [netadmin]}
    files: {download: true, upload: true, max_mb: 1}
  - name: no-files
    match: {profile: [restricted]}
    files: {download: false}
  - name: small
    match: {profile: [sysadmin]}
    files: {download: true, max_mb: 1}
  - name: default
"""


@pytest.fixture
def files_policy(settings: Any) -> None:
    settings.EPHEMERA_POLICY = parse(POLICY, source="test-files.yaml", default_approvers=settings.EPHEMERA_APPROVER_GROUP)


def running(users: SimpleNamespace, profile: str = "general") -> DebugSession:
    return create_running_session(users, image=debug_image(profile), profile=profile, reason="files")


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def body(response: Any) -> bytes:
    """The response's bytes; a download streams from an async iterator, as under Daphne."""
    if not response.streaming:
        return bytes(response.content)
    content = response.streaming_content

    async def collect() -> bytes:
        return b"".join([chunk async for chunk in content])

    return async_to_sync(collect)() if hasattr(content, "__aiter__") else b"".join(content)


def test_a_file_of_the_distroless_target_downloads_byte_exact_and_leaves_a_trail(term_kube: Any,
                                                                                 term_users: SimpleNamespace) -> None:
    session = running(term_users)
    resp = client_for(term_users.alice).get(f"/api/v1/sessions/{session.pk}/files", {"path": "/etc/nginx/nginx.conf"})
    assert resp.status_code == 200
    assert resp["Content-Disposition"] == 'attachment; filename="nginx.conf"'
    data = body(resp)
    assert data == NGINX_CONF.encode()
    transfer = FileTransfer.objects.get(session=session)
    assert (transfer.outcome, transfer.size, transfer.direction) == ("done", len(data), "download")
    import hashlib

    digest = hashlib.sha256(data).hexdigest()
    assert transfer.sha256 == digest
    assert b"".join(c.data for c in transfer.chunks.order_by("seq")) == data  # kept for the reviewer
    event = AuditEvent.objects.get(session=session, action="session.file_downloaded")
    assert event.data["path"] == "/etc/nginx/nginx.conf" and event.data["sha256"] == digest
    assert event.data["size"] == len(data) and event.data["kept"] is True
    # A marker in the recording, where the replay shows it.
    cast = b"".join(iter_cast(str(session.pk), title="t"))
    markers = [json.loads(line) for line in cast.decode().splitlines() if '"m"' in line]
    assert any(m[1] == "m" and "downloaded /etc/nginx/nginx.conf" in m[2] and digest in m[2] for m in markers)
    # Once the session is over, its replay has the transfer as a marker on the timeline.
    from sessions.services import session_end

    session_end(session_id=session.pk, actor=term_users.alice, reason="user")
    page = Client()
    page.force_login(term_users.dave)
    html = page.get(f"/sessions/{session.pk}/").content.decode()
    replay = json.loads(re.search(r'<script id="replay-data" type="application/json">(.*?)</script>', html, re.S).group(1))
    assert [m["text"] for m in replay["transfers"]] == [f"↓ /etc/nginx/nginx.conf ({len(data)} bytes, sha256 {digest[:12]}…)"]


def test_a_directory_comes_as_tar_gz(term_kube: Any, term_users: SimpleNamespace) -> None:
    session = running(term_users)
    resp = client_for(term_users.alice).get(f"/api/v1/sessions/{session.pk}/files", {"path": "/etc/nginx/"})
    assert resp.status_code == 200 and resp["Content-Type"] == "application/gzip"
    with tarfile.open(fileobj=io.BytesIO(body(resp)), mode="r:gz") as tar:
        assert sorted(tar.getnames()) == ["nginx", "nginx/mime.types", "nginx/nginx.conf"]
        member = tar.extractfile("nginx/nginx.conf")
        assert member is not None and member.read() == NGINX_CONF.encode()


def test_refusals_say_why_and_move_nothing(term_kube: Any, term_users: SimpleNamespace, files_policy: None) -> None:
    session = running(term_users)
    url = f"/api/v1/sessions/{session.pk}/files"
    alice = client_for(term_users.alice)
    assert alice.get(url, {"path": "etc/passwd"}).status_code == 400
    missing = alice.get(url, {"path": "/etc/nginx/nope.conf"})
    assert missing.status_code == 404 and "No such file" in missing.json()["detail"]
    # `..` can't climb out of the target's root (the path is normalized first).
    climbed = alice.get(url, {"path": "/../../../etc/nginx/nginx.conf"})
    assert climbed.status_code == 200 and body(climbed) == NGINX_CONF.encode()
    # Only the requester; an approver who can see the session can't take files out of it.
    bob = client_for(term_users.bob)
    refused = bob.get(url, {"path": "/etc/nginx/nginx.conf"})
    assert refused.status_code == 403 and "requester" in refused.json()["detail"]
    assert AuditEvent.objects.filter(session=session, action="session.file_refused", actor=term_users.bob).exists()
    # The default rule allows no uploads.
    up = alice.post(f"{url}?path=/tmp/x", data=b"hi", content_type="application/octet-stream")
    assert up.status_code == 403 and "no uploads" in up.json()["detail"]
    # A rule with files off.
    locked = running(term_users, profile="restricted")
    none = alice.get(f"/api/v1/sessions/{locked.pk}/files", {"path": "/etc/nginx/nginx.conf"})
    assert none.status_code == 403 and "no downloads" in none.json()["detail"]
    # Not while the session isn't running.
    from sessions.services import session_end

    session_end(session_id=session.pk, actor=term_users.alice, reason="user")
    assert alice.get(url, {"path": "/etc/nginx/nginx.conf"}).status_code == 409
    assert FileTransfer.objects.filter(session=session, outcome="done").count() == 1  # the `..` one only


def test_the_profile_decides_what_can_be_read(term_kube: Any, term_users: SimpleNamespace) -> None:
    session = running(term_users, profile="baseline")
    resp = client_for(term_users.alice).get(f"/api/v1/sessions/{session.pk}/files", {"path": "/etc/nginx/nginx.conf"})
    assert resp.status_code == 403 and "Permission denied" in resp.json()["detail"]
    assert not FileTransfer.objects.filter(session=session).exists()


def test_an_upload_lands_in_the_debug_container_within_the_rules_limit(term_kube: Any, term_users: SimpleNamespace,
                                                                       files_policy: None) -> None:
    session = running(term_users, profile="netadmin")
    url = f"/api/v1/sessions/{session.pk}/files"
    alice = client_for(term_users.alice)
    tool = bytes(range(256)) * 1000  # binary, 256 KB
    resp = alice.post(f"{url}?path=/tmp/tools/blob.bin", data=tool, content_type="application/octet-stream")
    assert resp.status_code == 201, resp.content
    import hashlib

    assert resp.json() == {"path": "/tmp/tools/blob.bin", "size": len(tool), "sha256": hashlib.sha256(tool).hexdigest()}
    code, out = get_client().exec_command(session.namespace, session.pod, session.container_name,
                                          ["sha256sum", "/tmp/tools/blob.bin"])
    assert code == 0 and out.split()[0] == hashlib.sha256(tool).hexdigest()
    event = AuditEvent.objects.get(session=session, action="session.file_uploaded")
    assert event.data["size"] == len(tool) and event.data["kept"] is False
    big = alice.post(f"{url}?path=/tmp/big", data=b"x" * (1024 * 1024 + 1), content_type="application/octet-stream")
    assert big.status_code == 413


def test_a_download_over_the_rules_limit_is_refused_up_front_and_a_directory_is_cut_off(
    term_kube: Any, term_users: SimpleNamespace, files_policy: None
) -> None:
    session = running(term_users, profile="sysadmin")
    # A 2 MB file in the target (written through the debug container: the target has no shell).
    code, out = get_client().exec_command(session.namespace, session.pod, session.container_name,
                                          ["sh", "-c", "mkdir -p /proc/1/root/tmp/dump && head -c 2000000 /dev/urandom "
                                                       "> /proc/1/root/tmp/dump/core"])
    assert code == 0, out
    url = f"/api/v1/sessions/{session.pk}/files"
    alice = client_for(term_users.alice)
    resp = alice.get(url, {"path": "/tmp/dump/core"})
    assert resp.status_code == 413 and "over this rule's limit of 1 MB" in resp.json()["detail"], resp.content
    assert not FileTransfer.objects.filter(session=session).exists()  # refused before a byte moved
    # A directory's archive size isn't known ahead: the stream stops at the limit, and says so.
    resp = alice.get(url, {"path": "/tmp/dump"})
    assert resp.status_code == 200
    with pytest.raises(Exception, match="over this rule's limit of 1 MB"):
        body(resp)
    transfer = FileTransfer.objects.get(session=session)
    assert transfer.outcome == "failed" and transfer.size <= 1024 * 1024, (transfer.outcome, transfer.size)
    assert "limit" in transfer.error
    event = AuditEvent.objects.get(session=session, action="session.file_failed")
    assert event.data["path"] == "/tmp/dump" and "limit" in event.data["error"]


def test_the_browser_session_needs_its_csrf_token_to_upload(term_kube: Any, term_users: SimpleNamespace,
                                                            files_policy: None) -> None:
    session = running(term_users, profile="netadmin")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(term_users.alice)
    resp = browser.post(f"/api/v1/sessions/{session.pk}/files?path=/tmp/x", data=b"hi",
                        content_type="application/octet-stream")
    assert resp.status_code == 403
    assert not FileTransfer.objects.filter(session=session).exists()
