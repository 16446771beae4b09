"""Session history benchmark: the page's time with 100,000 sessions.

    .venv/bin/python bench/history.py [--sessions 100000] [--runs 7]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ephemera_bench .venv/bin/python bench/history.py

Without DATABASE_URL: a temporary SQLite file. With a PostgreSQL DATABASE_URL the bench makes
a database of its own next to the one named (Django's test database, `test_<name>`: the named
one need not exist and is never written), and drops it at the end. It bulk-creates the
sessions (with their requests and a typed command each, a tenth of them reviewed), then times
GET /sessions/history/ through Django's test client as an auditor: unfiltered, with filters,
and a command search. Prints the median of --runs requests for each and the number of queries
per page.
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

CASES: dict[str, dict[str, str]] = {
    "first page, no filter": {},
    # "page 500 older"/"newer" are added at run time: the keyset cursors that lead there.
    "namespace + status": {"namespace": "payments", "status": "ended"},
    "not reviewed, one user": {"reviewed": "no", "user": "user7"},
    "pod prefix": {"pod": "web-4242"},
    "command search": {"command": "curl -s"},
    "command search, common": {"command": "ls -l"},
    "command search, no match": {"command": "kubectl cp"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--explain", action="store_true", help="print each page query's plan (EXPLAIN ANALYZE)")
    parser.add_argument("--keep", action="store_true", help="PostgreSQL: keep the filled database (to look at plans)")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="ephemera-bench-history-")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp}/bench.sqlite3")
    os.environ.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        EPHEMERA_DEMO="1",
        EPHEMERA_VAR_DIR=tmp,
        ALLOWED_HOSTS="testserver,localhost",
    )
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()  # responses carry their template context (the match count)
    postgres = connection.vendor == "postgresql"
    if postgres:
        # A scratch database of our own (created and migrated here, dropped at the end), so the
        # bench never fills the database DATABASE_URL names.
        old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
        if args.keep:
            print(f"keeping database {connection.settings_dict['NAME']} (dropdb it when done)")
    else:
        call_command("migrate", verbosity=0)
    try:
        run(args, postgres=postgres, tmp=tmp)
    finally:
        if postgres and not args.keep:
            connection.creation.destroy_test_db(old_name, verbosity=0)
        shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace, *, postgres: bool, tmp: str) -> None:
    from django.conf import settings
    from django.contrib.auth.models import Group, User
    from django.db import connection, transaction
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from approvals.models import DebugRequest
    from sessions.models import DebugSession
    from sessions.recording.models import SessionCommand
    from sessions.review.models import SessionReview

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
    where = f"PostgreSQL, database {connection.settings_dict['NAME']}" if postgres else f"SQLite, {tmp}"
    print(f"created {args.sessions} sessions in {time.perf_counter() - started:.1f} s ({where})")
    connection.cursor().execute("ANALYZE")

    from sessions.review.selectors import Cursor

    # Page 500 as its links reach it: older than page 499's last row, newer than page 501's first.
    ordered = DebugSession.objects.order_by("-created_at", "-pk")
    cases = dict(CASES)
    deep = min(500, args.sessions // 50 - 1)
    cases[f"page {deep} (older link)"] = {"after": Cursor.of(ordered[(deep - 1) * 50 - 1]).encode()}
    cases[f"page {deep} (newer link)"] = {"before": Cursor.of(ordered[deep * 50]).encode()}
    client = Client()
    client.force_login(auditor)
    client.get("/sessions/history/")  # the sign-in's first request stamps the web session: not a page cost
    print(f"{'case':<28} {'median ms':>10} {'min ms':>8} {'queries':>8} {'rows':>5}  load {load()}")
    for name, params in cases.items():
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            resp = client.get("/sessions/history/", params)
            times.append((time.perf_counter() - t0) * 1000)
            assert resp.status_code == 200, resp.status_code
        with CaptureQueriesContext(connection) as ctx:
            resp = client.get("/sessions/history/", params)
        rows = len(resp.context["page"].object_list)
        print(f"{name:<28} {statistics.median(times):>10.1f} {min(times):>8.1f} {len(ctx.captured_queries):>8} {rows:>5}")
        if args.explain:
            page_sql = max((q["sql"] for q in ctx.captured_queries), key=len)
            prefix = "EXPLAIN (ANALYZE, BUFFERS) " if postgres else "EXPLAIN QUERY PLAN "
            with connection.cursor() as cursor:
                cursor.execute(prefix + page_sql)
                print("    " + "\n    ".join(" | ".join(str(c) for c in row) for row in cursor.fetchall()))
    print(f"load average {load()}")


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
