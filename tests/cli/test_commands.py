"""The plugin's one-shot commands against the real portal: login, get, approve, deny, end, and the
exit codes scripts rely on (bad token 7, portal down 6, usage 2, refusals 1)."""

from __future__ import annotations

import http.server
import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.cli.conftest import PLUGIN, Stack, User, plugin_env, pod_request, wait_for
from tests.e2e.test_sigkill import _free_port

pytestmark = pytest.mark.slow


def test_login_stores_url_and_token_readable_only_by_the_user(stack: Stack, tmp_path: Path) -> None:
    token = stack.users["alice"].token
    env = plugin_env(tmp_path)
    result = User("x", token, tmp_path, stack.portal).run("login", stack.portal.url + "/", "--token", token, env=env)
    assert result.returncode == 0, result.stderr
    path = tmp_path / ".config" / "ephemera" / "config.json"
    assert json.loads(path.read_text()) == {"url": stack.portal.url, "token": token}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_login_reads_the_token_from_stdin_so_it_stays_out_of_shell_history(stack: Stack, tmp_path: Path) -> None:
    user = User("x", stack.users["bob"].token, tmp_path, stack.portal)
    result = user.run("login", stack.portal.url, input=user.token + "\n")
    assert result.returncode == 0, result.stderr
    assert user.token not in result.stdout + result.stderr
    assert user.json("get", "requests") is not None


def test_login_with_a_bad_token_exits_7_and_saves_nothing(stack: Stack, tmp_path: Path) -> None:
    user = User("x", "eph_not-a-real-token", tmp_path, stack.portal)
    result = user.run("login", stack.portal.url, "--token", user.token)
    assert result.returncode == 7, result.stderr
    assert "kubectl ephemera login" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / ".config" / "ephemera" / "config.json").exists()


def test_a_revoked_or_wrong_token_later_exits_7(stack: Stack, alice: User) -> None:
    result = alice.run("get", "requests", env={**alice.env, "EPHEMERA_TOKEN": "eph_wrong"})
    assert result.returncode == 7
    assert result.stderr.startswith("kubectl-ephemera: the portal refused the token")
    assert len(result.stderr.strip().splitlines()) == 1


def test_not_logged_in_exits_7_saying_how_to_log_in(tmp_path: Path) -> None:
    result = User("x", "", tmp_path, None).run("get", "requests")  # type: ignore[arg-type]
    assert result.returncode == 7
    assert "not logged in; run: kubectl ephemera login URL --token TOKEN" in result.stderr


def test_a_config_others_can_read_is_refused(stack: Stack, tmp_path: Path) -> None:
    user = User("x", stack.users["alice"].token, tmp_path, stack.portal)
    assert user.run("login", stack.portal.url, "--token", user.token).returncode == 0
    path = tmp_path / ".config" / "ephemera" / "config.json"
    os.chmod(path, 0o644)
    result = user.run("get", "requests")
    assert result.returncode == 7
    assert f"chmod 600 {path}" in result.stderr


def test_portal_down_exits_6(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{_free_port()}"
    user = User("x", "eph_whatever", tmp_path, None)  # type: ignore[arg-type]
    result = user.run("login", dead, "--token", "eph_whatever")
    assert result.returncode == 6
    assert f"can't reach the portal at {dead}" in result.stderr
    result = user.run("get", "sessions", env={**user.env, "EPHEMERA_URL": dead, "EPHEMERA_TOKEN": "eph_whatever"})
    assert result.returncode == 6


def test_login_to_something_that_is_not_the_portal_saves_nothing(tmp_path: Path) -> None:
    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            self.send_response(404)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<h1>Not Found</h1>")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        result = User("x", "", tmp_path, None).run("login", url, "--token", "eph_x")  # type: ignore[arg-type]
    finally:
        server.shutdown()
    assert result.returncode == 1
    assert "not the portal's JSON" in result.stderr
    assert not (tmp_path / ".config" / "ephemera" / "config.json").exists()


def test_plain_http_to_another_host_is_refused_before_any_token_is_sent(tmp_path: Path) -> None:
    result = User("x", "", tmp_path, None).run("login", "http://ephemera.example.com", "--token", "t")  # type: ignore[arg-type]
    assert result.returncode == 2
    assert "unencrypted" in result.stderr


def test_usage_errors_exit_2_in_one_line(alice: User) -> None:
    for args in (["deny", "b0e1d7c4-0000-4000-8000-000000000000"],  # deny needs -m
                 ["debug", "pod-x"],  # --reason is required
                 ["approve", "../sessions/x/end"],  # ids are UUIDs, never paths
                 ["debug", "pod-x", "--reason", "r", "--duration", "90s"],
                 ["debug", "deployment/web", "--reason", "r"],
                 ["frobnicate"]):
        result = alice.run(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_approve_and_deny_from_the_plugin(stack: Stack, alice: User, bob: User) -> None:
    rid = alice.run("debug", stack.nginx, "-n", "default", "--target=distroless-nginx-ctr", "--reason", "approve me", "--no-wait")
    assert rid.returncode == 0, rid.stderr
    first = rid.stdout.strip()
    denied_id = alice.api("POST", "/api/v1/requests", pod_request(stack, reason="deny me"))[1]["id"]

    own = alice.run("approve", first)
    assert own.returncode == 1  # nobody approves their own request: the portal's 403, in its words
    assert "kubectl-ephemera: " in own.stderr

    approved = bob.json("approve", first, "-m", "go")
    assert approved["id"] == first and approved["status"] == "approved"
    assert [d["approver"] for d in approved["decisions"]] == ["bob"]
    again = bob.run("approve", first)
    assert again.returncode == 1 and "already approved" in again.stderr

    denied = bob.json("deny", denied_id, "-m", "use staging")
    assert denied["status"] == "denied" and denied["decisions"][0]["comment"] == "use staging"

    listed = {r["id"]: r for r in bob.json("get", "requests")}
    assert listed[first]["status"] == "approved" and listed[denied_id]["status"] == "denied"
    table = bob.run("get", "requests", "--status", "denied")
    assert denied_id in table.stdout and first not in table.stdout
    assert table.stdout.splitlines()[0].split() == ["ID", "STATUS", "REQUESTER", "TARGET", "PROFILE", "APPROVALS", "AGE", "REASON"]

    session = alice.api("GET", f"/api/v1/requests/{first}")[1]["session"]
    wait_for(lambda: alice.api("GET", f"/api/v1/sessions/{session['id']}")[1]["status"] == "running", 60)
    running = {s["id"]: s for s in bob.json("get", "sessions")}
    assert running[session["id"]]["requester"] == "alice" and running[session["id"]]["request_id"] == first
    assert session["id"] in bob.run("get", "sessions", "-n", "default").stdout
    assert session["id"] not in bob.run("get", "sessions", "-n", "payments").stdout
    assert alice.json("get", "session", session["id"])["request_id"] == first
    # bob may end alice's session (revoke) only with a reason: the portal's 400, exit 1.
    assert bob.run("end", session["id"]).returncode == 1
    assert bob.json("end", session["id"], "--reason", "done here")["status"] == "ended"
    assert session["id"] not in {s["id"] for s in alice.json("get", "sessions")}
    assert session["id"] in {s["id"] for s in alice.json("get", "sessions", "--status", "ended")}


def test_sysadmin_needs_two_approvals_and_the_preview_says_so(stack: Stack, alice: User, bob: User, carol: User) -> None:
    result = alice.run("debug", stack.nginx, "-n", "default", "--target=distroless-nginx-ctr", "--profile=sysadmin",
                       "--reason", "privileged", "--no-wait", "-o", "json")
    assert result.returncode == 0, result.stderr
    assert "Policy: rule sysadmin: 2 approvers" in result.stderr
    req = json.loads(result.stdout)
    assert req["status"] == "pending" and req["policy"]["approvals_required"] == 2
    assert bob.json("approve", req["id"])["status"] == "pending"
    table = carol.run("get", "request", req["id"])
    assert "1/2" in table.stdout
    assert carol.json("approve", req["id"])["status"] == "approved"
    sid = alice.api("GET", f"/api/v1/requests/{req['id']}")[1]["session"]["id"]
    assert alice.json("end", sid)["status"] == "ended"


def test_a_node_request_needs_its_ticket_and_two_approvers(stack: Stack, alice: User) -> None:
    refused = alice.run("debug", "node/debian-11", "--profile=sysadmin", "--reason", "disk full", "--no-wait")
    assert refused.returncode == 1
    assert refused.stderr.startswith("kubectl-ephemera: --ticket: "), refused.stderr
    result = alice.run("debug", "node/debian-11", "--profile=sysadmin", "--reason", "disk full", "--ticket", "INC-7",
                       "--no-wait", "-o", "json")
    assert result.returncode == 0, result.stderr
    req = json.loads(result.stdout)
    assert (req["kind"], req["node"], req["ticket"], req["policy"]["rule"]) == ("node", "debian-11", "INC-7", "node-and-sysadmin")
    assert alice.api("POST", f"/api/v1/requests/{req['id']}/cancel")[0] == 200
    assert alice.run("debug", "node/debian-11", "--target=x", "--reason", "r").returncode == 2


def test_a_refused_request_names_the_plugins_flags(stack: Stack, alice: User) -> None:
    result = alice.run("debug", stack.nginx, "-n", "default", "--target=distroless-nginx-ctr", "--reason", "r",
                       "--duration", "600m", "--no-wait")
    assert result.returncode == 1
    assert result.stderr.startswith("kubectl-ephemera: --duration: ")


def test_kubectl_finds_the_plugin_on_path(stack: Stack, alice: User) -> None:
    kubectl = Path(sys.executable).parent / "kubectl"
    env = {**alice.env, "PATH": f"{PLUGIN.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run([str(kubectl), "ephemera", "get", "requests", "-o", "json"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert isinstance(json.loads(result.stdout), list)
    help_text = subprocess.run([str(kubectl), "ephemera", "--help"], env=env, capture_output=True, text=True, timeout=60).stdout
    for line in ("3  denied", "5  timed out waiting", "6  the portal is unreachable", "7  authentication"):
        assert line in help_text
