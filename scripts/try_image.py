"""Run the built image's files against PostgreSQL, Redis and kubesim on this machine, and go through
sign-in (a token), request, approval and a terminal.

    python scripts/try_image.py localhost/ephemera:local

Where containers can run, `podman run` does this. On this machine kind podman builds the image but
cannot start a container (the sandbox forbids setrlimit, which runc and crun call for every
container), so the image's root filesystem (`podman image mount`) runs here the way the container
would: read-only, as uid 10001, writable only in /tmp and /var/lib/ephemera, with the image's own
Python and packages (chroot), on the host's network.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kubesim.testing import spawn_cluster  # noqa: E402
from tests.scale.clients import api, ask, connect, session_of  # noqa: E402
from tests.scale.conftest import free_port  # noqa: E402

PG = "postgres://postgres@127.0.0.1:5432"


def main(image: str) -> None:
    root = subprocess.run(["podman", "image", "mount", image], check=True, capture_output=True, text=True).stdout.strip()
    work = Path(tempfile.mkdtemp(prefix="try-image-"))
    (work / "tmp").mkdir()
    (work / "var").mkdir()
    subprocess.run(["chown", "10001:10001", str(work / "tmp"), str(work / "var")], check=True)
    db = f"ephemera_image_{uuid.uuid4().hex[:8]}"
    subprocess.run(["psql", f"{PG}/postgres", "-qc", f'CREATE DATABASE "{db}"'], check=True)
    port = free_port()
    with spawn_cluster(work / "kubesim") as cluster:
        (work / "tmp" / "kubeconfig").write_text(Path(cluster.kubeconfig).read_text())
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/var/lib/ephemera", "EPHEMERA_VAR_DIR": "/var/lib/ephemera",
            "LOG_FORMAT": "json", "SECRET_KEY": secrets.token_hex(32), "ALLOWED_HOSTS": "127.0.0.1",
            "DATABASE_URL": f"{PG}/{db}", "REDIS_URL": "redis://127.0.0.1:6379/7", "KUBECONFIG": "/tmp/kubeconfig",
            "EPHEMERA_CHANNEL_PREFIX": f"try-{uuid.uuid4().hex[:6]}", "EPHEMERA_SECURE_COOKIES": "0",
        }

        def inside(*argv: str, background: bool = False) -> subprocess.Popen[bytes] | str:
            mounts = (f"mount --bind {work / 'tmp'} {root}/tmp && mount --bind {work / 'var'} {root}/var/lib/ephemera && "
                      f"mount -t proc proc {root}/proc && ")
            envs = " ".join(f"{k}='{v}'" for k, v in env.items())
            command = f"{mounts} exec chroot --userspec=10001:10001 {root} /usr/bin/env -i {envs} sh -c 'cd /app && exec {' '.join(argv)}'"
            if background:
                return subprocess.Popen(["unshare", "-m", "sh", "-c", command], start_new_session=True)
            return subprocess.run(["unshare", "-m", "sh", "-c", command], check=True, capture_output=True, text=True).stdout.strip()

        def inside_python(code: str) -> str:
            """Python run by the image's `manage.py shell` (the code goes in through a file in /tmp)."""
            (work / "tmp" / "snippet.py").write_text(code)
            return str(inside("python", "manage.py", "shell", "-v", "0", "<", "/tmp/snippet.py")).splitlines()[-1]

        inside("python", "manage.py", "migrate", "--noinput")
        inside_python("from django.contrib.auth.models import Group, User\n"
                      "for name in ('alice', 'bob'):\n    User.objects.create_user(name, password='x' * 20)\n"
                      "User.objects.get(username='bob').groups.add(Group.objects.get_or_create(name='approvers')[0])\n"
                      "print('users made')\n")
        alice = str(inside("python", "manage.py", "create_api_token", "alice")).splitlines()[-1]
        bob = str(inside("python", "manage.py", "create_api_token", "bob")).splitlines()[-1]
        portal = inside("daphne", "-b", "127.0.0.1", "-p", str(port), "portal.asgi:application", background=True)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                try:
                    if api(base, alice, "GET", "/readyz").status_code == 200:
                        break
                except OSError:
                    pass
                time.sleep(0.3)
            print("readyz:", api(base, alice, "GET", "/readyz").json())
            pod = inside_python("from portal.kube import get_client\n"
                                "print(next(p.name for p in get_client().list_pods('default') "
                                "if p.name.startswith('distroless-nginx-')))\n")
            req = ask(base, alice, pod=pod, reason="the image, tried on this machine")
            print("request:", req, api(base, bob, "POST", f"/api/v1/requests/{req}/approve", {"comment": "ok"}).status_code)
            session = session_of(base, alice, req)

            async def terminal() -> bytes:
                term = await connect(base, f"/ws/sessions/{session}/terminal", alice)
                await term.connected()
                said = await term.run("echo from-the-image-$((6*7)); id -u", "img")
                await term.close()
                return said

            print("terminal:", asyncio.run(terminal()))
            api(base, alice, "POST", f"/api/v1/sessions/{session}/end")
        finally:
            portal.terminate()  # type: ignore[union-attr]
            portal.wait(10)  # type: ignore[union-attr]
            subprocess.run(["psql", f"{PG}/postgres", "-qc", f'DROP DATABASE IF EXISTS "{db}"'], check=False)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "localhost/ephemera:local")
