"""Session history benchmark: the page's time with 100,000 sessions.

    .venv/bin/python bench/history.py [--sessions 100000] [--runs 7]

Migrates a temporary SQLite database, bulk-creates the sessions (with their requests and a
typed command each, a tenth of them reviewed), then times GET /sessions/history/ through
Django's test client as an auditor: unfiltered, with filters, and a command search. Prints
the median of --runs requests for each and the number of queries per page.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CASES = {
    "first page, no filter": {},
    "page 500": {"page": "500"},
    "namespace + status": {"namespace": "payments", "status": "ended"},
    "not reviewed, one user": {"reviewed": "no", "user": "user7"},
    "pod prefix": {"pod": "web-4242"},
    "command search": {"command": "curl -s"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="ephemera-bench-history-")
    os.environ.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        EPHEMERA_DEMO="1",
        EPHEMERA_VAR_DIR=tmp,
        DATABASE_URL=f"sqlite:///{tmp}/bench.sqlite3",
        ALLOWED_HOSTS="testserver,localhost",
    )
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment
    from django.utils import timezone

    from approvals.models import DebugRequest
    from sessions.models import DebugSession
    from sessions.recording.models import SessionCommand
    from sessions.review.models import SessionReview

    setup_test_environment()  # responses carry their template context (the match count)
    call_command("migrate", verbosity=0)
    auditor = User.objects.create_user("auditor", password="x")
    auditor.groups.add(Group.objects.get_or_create(name=settings.EPHEMERA_AUDITOR_GROUP)[0])
    users = [User.objects.create_user(f"user{i}", password="x") for i in range(50)]
    started = time.perf_counter()
    now = timezone.now()
    batch = 5000
    for offset in range(0, args.sessions, batch):
        with transaction.atomic():
            n = min(batch, args.sessions - offset)
            reqs = DebugRequest.objects.bulk_create(
                DebugRequest(
                    requester=users[i % len(users)],
                    created_at=now - timedelta(minutes=i),
                    namespace=("default", "payments", "search")[i % 3],
                    pod=f"web-{i}",
                    container="app",
                    image="busybox",
                    reason="bench",
                    duration_minutes=10,
                    status="approved",
                    expires_at=now,
                )
                for i in range(offset, offset + n)
            )
            sessions = DebugSession.objects.bulk_create(
                DebugSession(
                    request=r,
                    created_at=r.created_at,
                    namespace=r.namespace,
                    pod=r.pod,
                    container_name="debugger-x",
                    status="ended" if i % 10 else "failed",
                )
                for i, r in enumerate(reqs, offset)
            )
            SessionCommand.objects.bulk_create(
                SessionCommand(session=s, t=1.0, text="curl -s localhost:8080/health" if i % 100 == 0 else f"ls -l /var/log/{i}")
                for i, s in enumerate(sessions, offset)
            )
            SessionReview.objects.bulk_create(
                SessionReview(session=s, reviewer=auditor, note="ok", created_at=now)
                for i, s in enumerate(sessions, offset)
                if i % 10 == 0
            )
    print(f"created {args.sessions} sessions in {time.perf_counter() - started:.1f} s (SQLite, {tmp})")
    connection.cursor().execute("ANALYZE")

    client = Client()
    client.force_login(auditor)
    print(f"{'case':<26} {'median ms':>10} {'min ms':>8} {'queries':>8} {'matches':>8}")
    for name, params in CASES.items():
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            resp = client.get("/sessions/history/", params)
            times.append((time.perf_counter() - t0) * 1000)
            assert resp.status_code == 200, resp.status_code
        with CaptureQueriesContext(connection) as ctx:
            resp = client.get("/sessions/history/", params)
        count = resp.context["page"].paginator.count
        print(f"{name:<26} {statistics.median(times):>10.1f} {min(times):>8.1f} {len(ctx.captured_queries):>8} {count:>8}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
