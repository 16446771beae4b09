"""`make run`: the whole of Ephemera on one laptop, on embedded defaults.

Starts kubesim (the simulated cluster, with its demo state), migrates the SQLite database,
seeds the demo users, then runs the portal under Daphne and the worker (`run_worker`: the
reaper and notification delivery) beside it. Prints
the URL and the logins. Ctrl-C (or SIGTERM) stops everything it started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO_USERS = [("alice", "requester"), ("bob", "approver"), ("carol", "approver"), ("dave", "auditor"), ("admin", "admin")]


def demo_port() -> int:
    """The portal's port: PORT (default 8000). A bad value stops here with one line, before anything starts."""
    raw = os.environ.get("PORT", "").strip() or "8000"
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise SystemExit(f"ephemera: PORT={raw!r} is not a port number (1-65535), e.g. PORT=8080 make run")
    return int(raw)


def main() -> int:
    port = demo_port()
    var = Path(os.environ.get("EPHEMERA_VAR_DIR", ROOT / "var"))
    var.mkdir(parents=True, exist_ok=True)
    kubeconfig = var / "kubesim.kubeconfig"
    env = dict(os.environ, EPHEMERA_DEMO="1", KUBECONFIG=str(kubeconfig), EPHEMERA_VAR_DIR=str(var))
    env.setdefault("EPHEMERA_NODE_DEBUG_NAMESPACE", "default")
    env.setdefault("EPHEMERA_POLICY_FILE", str(ROOT / "portal" / "demo_policy.yaml"))
    # Links in notifications (when a channel is set, e.g. EPHEMERA_NOTIFY_WEBHOOK_URL) point here.
    env.setdefault("EPHEMERA_BASE_URL", f"http://127.0.0.1:{port}")

    children: list[subprocess.Popen[bytes]] = []

    def stop(*_: object) -> None:
        for child in reversed(children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for child in children:
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
        sys.exit(0)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    kubesim = subprocess.Popen(
        [sys.executable, "-m", "kubesim", "serve", "--kubeconfig", str(kubeconfig), "--port", "0",
         "--audit-log", str(var / "kubesim-audit.jsonl")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE,
    )
    children.append(kubesim)
    assert kubesim.stdout is not None
    ready = kubesim.stdout.readline().decode().strip()
    if kubesim.poll() is not None or "ready" not in ready:
        print(f"kubesim did not start: {ready}", file=sys.stderr)
        stop()
    print(ready, flush=True)

    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    subprocess.run([*manage, "seed_demo"], cwd=ROOT, env=env, check=True)

    # Every background duty: the reaper, notification delivery, ending-soon notices.
    if _has_command("run_worker"):
        children.append(subprocess.Popen([*manage, "run_worker"], cwd=ROOT, env=env))
    children.append(
        subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "portal.asgi:application"],
            cwd=ROOT, env=env,
        )
    )
    print(f"\nEphemera is running at http://127.0.0.1:{port}/  (Ctrl-C stops it)")
    print("Demo logins (password is <name>-demo-pass):")
    for name, role in DEMO_USERS:
        print(f"  {name:<6} {role:<10} password: {name}-demo-pass")
    print(f"Cluster: kubesim, kubeconfig {kubeconfig} (try: KUBECONFIG={kubeconfig} .venv/bin/kubectl get pods -A)\n", flush=True)

    while True:
        for child in children:
            if child.poll() is not None:
                print(f"{child.args!r} exited with {child.returncode}; stopping", file=sys.stderr)
                stop()
        time.sleep(0.5)


def _has_command(name: str) -> bool:
    return (ROOT / "sessions" / "management" / "commands" / f"{name}.py").exists()


if __name__ == "__main__":
    raise SystemExit(main())
