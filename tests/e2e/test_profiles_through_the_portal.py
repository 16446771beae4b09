"""What each debug profile grants, seen in Ephemera's own terminal (issue 14).

kubesim isolates containers as a kubelet does, so what the engineer's shell can reach through
the portal is what it could reach on a cluster: the target's files through /proc/1/root need
SYS_PTRACE (general, sysadmin) or the target's own uid (restricted runs as nonroot, like the
distroless nginx); baseline and netadmin are root without SYS_PTRACE and get Permission denied.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from kubesim.testing import NONROOT_IMAGE, debug_image
from tests.sessions.conftest import create_running_session, open_term

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

SYS_PTRACE, NET_ADMIN, SYS_ADMIN = 1 << 19, 1 << 12, 1 << 21
# profile -> (uid, target's files readable, capabilities that must be in / out of the bounding set)
EXPECTED: dict[str, tuple[int, bool, int, int]] = {
    "general": (0, True, SYS_PTRACE, NET_ADMIN | SYS_ADMIN),
    "baseline": (0, False, 0, SYS_PTRACE | NET_ADMIN | SYS_ADMIN),
    "restricted": (65532, True, 0, (1 << 41) - 1),
    "netadmin": (0, False, NET_ADMIN, SYS_PTRACE | SYS_ADMIN),
    "sysadmin": (0, True, SYS_ADMIN | SYS_PTRACE | NET_ADMIN, 0),
}


@pytest.mark.parametrize("profile", list(EXPECTED))
async def test_the_terminal_shows_what_the_profile_grants(profile: str, term_kube: Any, term_users: Any, use_policy: Any) -> None:
    from sessions import services
    from sessions.choices import EndReason

    use_policy(f'{{images: [busybox, "{NONROOT_IMAGE}"], rules: [{{name: default}}]}}')
    uid, readable, present, absent = EXPECTED[profile]
    session = await sync_to_async(create_running_session)(term_users, image=debug_image(profile), profile=profile,
                                                          reason="what does it grant", duration_minutes=15)
    term, connected = await open_term(session, user=term_users.alice)
    try:
        assert connected
        await term.until(lambda: any(s["event"] == "connected" for s in term.statuses))
        await term.resize(160, 40)
        assert (await term.run("id -u", "uid")).strip() == str(uid).encode()
        bounding = await term.run("grep CapBnd /proc/self/status", "caps")
        caps = int(re.search(rb"CapBnd:\s*([0-9a-f]+)", bounding).group(1), 16)  # type: ignore[union-attr]
        assert caps & present == present and not caps & absent, hex(caps)
        listing = await term.run("ls /proc/1/root/etc/nginx 2>&1", "files")
        if readable:
            assert listing.split() == [b"mime.types", b"nginx.conf"], listing
        else:
            assert b"Permission denied" in listing, listing
        # The target's processes, and only the pod's: its master is PID 1.
        ps = await term.run("ps -o pid,args", "ps")
        assert re.search(rb"^\s*1\s+nginx: master process", ps, re.M), ps
        assert b"pytest" not in ps and b"daphne" not in ps, ps
    finally:
        await term.close()
        await sync_to_async(services.session_end)(session_id=session.pk, actor=term_users.alice, reason=EndReason.USER)


async def test_a_copys_terminal_is_its_debug_container_beside_the_replaced_target(term_kube: Any, term_users: Any) -> None:
    """kubectl debug --copy-to, through the portal: the shell shares the copy's processes (the
    pause process is PID 1), the crashing worker's command was replaced, the host is the copy."""
    from sessions import services
    from sessions.choices import EndReason

    session = await sync_to_async(create_running_session)(
        term_users, kind="copy", namespace="payments", pod="ledger-worker-6b8d7f9c5-m4n7p", container="worker",
        reason="it crashes at start", duration_minutes=15, copy={"command": ["sleep", "infinity"]})
    term, connected = await open_term(session, user=term_users.alice)
    try:
        assert connected
        await term.until(lambda: any(s["event"] == "connected" for s in term.statuses))
        await term.resize(160, 40)
        assert (await term.run("hostname", "host")).strip() == session.pod.encode()
        ps = await term.run("ps -o pid,args", "ps")
        assert re.search(rb"^\s*1\s+\S*/pause", ps, re.M), ps
        assert b"sleep infinity" in ps and b"cannot reach the database" not in ps, ps
    finally:
        await term.close()
        await sync_to_async(services.session_end)(session_id=session.pk, actor=term_users.alice, reason=EndReason.USER)
