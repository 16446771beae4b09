"""The whole flow from a terminal: `kubectl ephemera debug` -> another user approves -> the shell
sees the target's processes -> resize -> Ctrl-P Ctrl-Q -> `attach` -> the same shell -> more time
granted while attached -> `end`. pexpect gives the plugin a real pty, as a person's terminal."""

from __future__ import annotations

import re
import time

import pexpect
import pytest

from kubesim.testing import NONROOT_IMAGE
from tests.cli.conftest import TARGET, UUID, Stack, User, pod_request, wait_for

pytestmark = pytest.mark.slow


def _debug(stack: Stack, user: User, *extra: str) -> pexpect.spawn:
    return user.spawn("debug", stack.nginx, "-n", "default", f"--target={TARGET}", "--image=busybox", "--profile=general",
                      "--reason", "INC-1234 502s", "--duration", "30m", *extra)


def _pid(child: pexpect.spawn, tag: str) -> int:
    # `$$` is expanded by the remote shell: the echoed command line doesn't match, the output does.
    child.send(f"echo {tag}$((6*7))-$$\r")
    child.expect(rf"{tag}42-(\d+)")
    return int(child.match.group(1))


def test_debug_approve_attach_detach_attach_extend_end(stack: Stack, alice: User, bob: User) -> None:
    child = _debug(stack, alice)
    child.expect(r"Policy: rule default: ")
    child.expect(rf"Request ({UUID}): pending, 0 of 1 approvals from approvers")
    rid = child.match.group(1)
    child.expect("Waiting for approval: 0 of 1 approvals")

    code, _ = bob.api("POST", f"/api/v1/requests/{rid}/approve", {"comment": "go ahead"})
    assert code == 200
    child.expect("bob approved: go ahead")
    child.expect(rf"Session ({UUID}) is running")
    sid = child.match.group(1)
    child.expect(r"\[ephemera\] Attached to session .*Detach: Ctrl-P Ctrl-Q")

    child.setwinsize(50, 211)  # SIGWINCH to the plugin, as a terminal window does
    # The new size and the next keys travel different streams to the cluster (kubesim's resize
    # channel and stdin): ask until the shell has it, as a person glancing at the prompt would.
    for _ in range(20):
        child.send("stty size\r")
        if child.expect([r"\b50 211\b", r"\b\d+ \d+\r\n"]) == 0:
            break
        time.sleep(0.25)
    else:
        raise AssertionError(f"the shell never saw the new size: {child.before!r}")
    # ps fits its lines to the terminal's width: the wider window shows the target's commands.
    child.send("ps aux\r")
    child.expect("nginx: master process")

    first = _pid(child, "A")
    child.send("\x10\x11")  # Ctrl-P Ctrl-Q
    child.expect(rf"Detached; the shell keeps running\. Back with: kubectl ephemera attach {sid}")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0

    again = alice.spawn("attach", sid)
    again.expect(r"\[ephemera\] Attached to session")
    assert _pid(again, "B") == first, "attach must return to the same shell"

    ext = alice.json("extend", sid, "15m", "--reason", "still digging")
    assert ext["status"] == "pending" and ext["minutes"] == 15
    decided = bob.json("approve", ext["id"], "-m", "ok")
    assert decided["status"] == "approved"
    # The portal's status message, on a line of its own, with the new end time.
    again.expect(r"\r\n\[ephemera\] [^\r\n]+\(ends at \d\d:\d\d \(in ")

    ended = alice.json("end", sid)
    assert ended["status"] == "ended"
    again.expect(r"\[ephemera\] ")
    again.expect(pexpect.EOF)
    again.close()
    assert again.exitstatus == 0, again.before


def test_bulk_output_over_the_flow_control_window_arrives_whole_and_utf8_intact(stack: Stack, alice: User) -> None:
    # `restricted` in default approves itself (demo policy): straight to the shell.
    child = alice.spawn("debug", stack.nginx, "-n", "default", f"--target={TARGET}", "--profile=restricted", f"--image={NONROOT_IMAGE}",
                        "--reason", "bulk output", "--duration", "10m")
    child.expect("approved by policy")
    child.expect(r"\[ephemera\] Attached to session")
    # 150,000 lines of 3-byte and 2-byte characters: 1.5 MB, more than the 1 MiB the server sends
    # unacknowledged, so it only completes if the plugin acks what it writes; frames split
    # characters wherever they fall.
    child.send("yes 'é✓日' | head -n 150000; echo DONE$((1+1))\r")
    child.expect("DONE2", timeout=120, searchwindowsize=200)
    assert child.before.count("é✓日\r\n") == 150000
    child.send("\x10\x11")
    child.expect(pexpect.EOF)
    child.close()
    sid = re.search(rf"attach ({UUID})", child.before or "")
    assert child.exitstatus == 0
    assert sid, child.before
    assert alice.json("end", sid.group(1))["status"] == "ended"


def test_an_approver_revoking_the_session_ends_the_terminal_with_exit_8(stack: Stack, alice: User, bob: User) -> None:
    child = alice.spawn("debug", stack.nginx, "-n", "default", f"--target={TARGET}", "--profile=restricted", f"--image={NONROOT_IMAGE}",
                        "--reason", "revoke me", "--duration", "10m")
    child.expect(rf"Session ({UUID}) is running")
    sid = child.match.group(1)
    child.expect(r"\[ephemera\] Attached to session")
    code, _ = bob.api("POST", f"/api/v1/sessions/{sid}/end", {"reason": "wrong pod, \x1b]0;pwned\x07 sorry"})
    assert code == 200
    child.expect(r"\[ephemera\] [^\r\n]*wrong pod")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 8
    assert "\x1b]0;" not in (child.before or ""), "another user's text must not reach the terminal's escape parser"


def test_piped_input_reaches_the_shell_and_the_plugin_detaches_when_it_ends(stack: Stack, alice: User) -> None:
    code, req = alice.api("POST", "/api/v1/requests", pod_request(stack, profile="restricted", image=NONROOT_IMAGE, reason="scripted"))
    assert code == 201 and req["status"] == "approved", req
    sid = wait_for(lambda: (alice.api("GET", f"/api/v1/requests/{req['id']}")[1]["session"] or {}).get("id"), 60)
    result = alice.run("attach", sid, input="echo PIPED$((40+2))\n", timeout=90)
    assert result.returncode == 0, result.stderr
    assert "PIPED42" in result.stdout
    assert "stdin is not a terminal" in result.stderr
    assert alice.json("end", sid)["status"] == "ended"


def test_a_cut_cluster_stream_reconnects_to_the_same_shell(stack: Stack, alice: User) -> None:
    child = alice.spawn("debug", stack.nginx, "-n", "default", f"--target={TARGET}", "--profile=restricted", f"--image={NONROOT_IMAGE}",
                        "--reason", "flaky network", "--duration", "10m")
    child.expect(rf"Session ({UUID}) is running")
    sid = child.match.group(1)
    child.expect(r"\[ephemera\] Attached to session")
    before = _pid(child, "C")
    assert stack.cluster.faults.cut_streams(namespace="default", pod=stack.nginx) >= 1
    child.expect(r"\[ephemera\] Connection lost; reconnecting in \d+s")
    child.expect(r"\[ephemera\] Attached to session", timeout=30)
    assert _pid(child, "D") == before
    child.send("\x10\x11")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert alice.json("end", sid)["status"] == "ended"


def test_the_time_limit_ends_the_terminal_with_exit_4(stack: Stack, alice: User) -> None:
    child = alice.spawn("debug", stack.nginx, "-n", "default", f"--target={TARGET}", "--profile=restricted", f"--image={NONROOT_IMAGE}",
                        "--reason", "short one", "--duration", "10m")
    child.expect(rf"Session ({UUID}) is running")
    sid = child.match.group(1)
    child.expect(r"\[ephemera\] Attached to session")
    # The time runs out (moved, not waited for); the worker ends the session as at any limit.
    stack.portal.query(
        "from sessions.models import DebugSession; from django.utils import timezone; from datetime import timedelta;"
        f"print(DebugSession.objects.filter(pk='{sid}').update(expires_at=timezone.now() - timedelta(seconds=1)))"
    )
    if not stack.portal.workers:
        stack.portal.start_reaper()
    child.expect(r"\[ephemera\] ", timeout=60)
    child.expect(pexpect.EOF, timeout=30)
    child.close()
    assert child.exitstatus == 4, child.before
    assert alice.api("GET", f"/api/v1/sessions/{sid}")[1]["end_reason"] == "expired"


def test_a_denial_while_waiting_exits_3_with_who_and_why(stack: Stack, alice: User, bob: User) -> None:
    child = _debug(stack, alice)
    child.expect(rf"Request ({UUID}): pending")
    rid = child.match.group(1)
    child.expect("Waiting for approval")
    code, _ = bob.api("POST", f"/api/v1/requests/{rid}/deny", {"comment": "use staging"})
    assert code == 200
    child.expect(f"request {rid} was denied by bob: use staging")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 3


def test_an_unanswered_request_past_its_deadline_exits_4(stack: Stack, alice: User) -> None:
    child = _debug(stack, alice)
    child.expect(rf"Request ({UUID}): pending")
    rid = child.match.group(1)
    child.expect("Waiting for approval")
    stack.portal.query(
        "from approvals.models import DebugRequest; from django.utils import timezone; from datetime import timedelta;"
        f"print(DebugRequest.objects.filter(pk='{rid}').update(expires_at=timezone.now() - timedelta(seconds=1)))"
    )
    child.expect(f"request {rid} expired before anyone decided")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 4


def test_wait_timeout_exits_5_and_leaves_the_request_pending(stack: Stack, alice: User) -> None:
    result = alice.run("debug", stack.nginx, "-n", "default", f"--target={TARGET}", "--reason", "slow approvers",
                       "--wait-timeout", "2s")
    assert result.returncode == 5, result.stderr
    rid = re.search(rf"Request ({UUID})", result.stderr)
    assert rid, result.stderr
    assert "kubectl ephemera attach" in result.stderr.splitlines()[-1]
    code, req = alice.api("GET", f"/api/v1/requests/{rid.group(1)}")
    assert req["status"] == "pending"
    assert alice.api("POST", f"/api/v1/requests/{rid.group(1)}/cancel")[0] == 200


def test_ctrl_c_while_waiting_withdraws_the_request(stack: Stack, alice: User) -> None:
    child = _debug(stack, alice)
    child.expect(rf"Request ({UUID}): pending")
    rid = child.match.group(1)
    child.expect("Ctrl-C withdraws the request")
    child.sendintr()
    child.expect(f"withdrew request {rid}")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    assert wait_for(lambda: alice.api("GET", f"/api/v1/requests/{rid}")[1]["status"] == "cancelled")


def test_attach_with_a_request_id_waits_for_its_session(stack: Stack, alice: User, bob: User) -> None:
    code, req = alice.api("POST", "/api/v1/requests", pod_request(stack))
    assert code == 201, req
    child = alice.spawn("attach", req["id"])
    child.expect("Waiting for approval: 0 of 1")
    child.expect("Ctrl-C stops waiting")
    assert bob.api("POST", f"/api/v1/requests/{req['id']}/approve", {})[0] == 200
    child.expect(r"\[ephemera\] Attached to session")
    child.send("\x10\x11")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    sid = alice.api("GET", f"/api/v1/requests/{req['id']}")[1]["session"]["id"]
    assert alice.json("end", sid)["status"] == "ended"
