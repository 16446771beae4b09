"""Workers at once, and a worker killed mid-delivery: nothing sent twice, nothing lost.

Run on PostgreSQL too (FOR UPDATE SKIP LOCKED): DATABASE_URL=postgres://... REDIS_URL=...
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from django.db import connection, transaction

from portal.notifications import delivery, outbox
from portal.notifications.constants import Channel, DeliveryStatus, Event
from portal.notifications.models import Notification
from tests.concurrency import run_at_once
from tests.notifications.conftest import SECRET

REPO = Path(__file__).resolve().parents[2]
HOOK = "/hook?token=s3cr3t-in-url"


def enqueue_many(people: Any, make_request: Any, count: int) -> list[Notification]:
    rows = []
    for _ in range(count):
        req = make_request(people.alice)
        with transaction.atomic():
            rows += outbox.enqueue(Event.REQUEST_CREATED, request=req, actor=people.alice)
    return [r for r in rows if r.channel == Channel.WEBHOOK]


def test_two_workers_at_once_send_nothing_twice(transactional_db: Any, people: Any, make_request: Any, channels_on: Any,
                                                settings: Any) -> None:
    settings.EPHEMERA_SLACK_WEBHOOK_URL = ""
    settings.EPHEMERA_EMAIL = None
    receiver = channels_on
    rows = enqueue_many(people, make_request, 30)

    def worker() -> None:
        me = delivery.new_worker_id()
        report = delivery.DeliveryReport()
        while delivery.deliver_one(Channel.WEBHOOK, me, report):
            pass

    assert run_at_once(worker, copies=3) == []
    seen = Counter(h.headers["X-Ephemera-Delivery"] for h in receiver.on(HOOK))
    assert set(seen) == {str(r.delivery_id) for r in rows}
    assert max(seen.values()) == 1, [k for k, v in seen.items() if v > 1]
    assert Notification.objects.filter(status=DeliveryStatus.DELIVERED, attempts=1).count() == 30


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _start_worker(receiver_url: str, tmp: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EPHEMERA_", "EMAIL_URL", "DJANGO_SETTINGS_MODULE"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "EPHEMERA_DEMO": "1",
        "EPHEMERA_VAR_DIR": str(tmp),
        "DATABASE_URL": _database_url(),
        "EPHEMERA_BASE_URL": "https://ephemera.example.com",
        "EPHEMERA_NOTIFY_WEBHOOK_URL": f"{receiver_url}{HOOK}",
        "EPHEMERA_NOTIFY_WEBHOOK_SECRET": SECRET,
        # A 2 s deadline: a claim lasts 2 * 2 + 5 = 9 s, so the restart's re-send comes soon.
        "EPHEMERA_NOTIFY_TIMEOUT_SECONDS": "2",
    })
    return subprocess.Popen([sys.executable, "manage.py", "run_worker", "--only", "delivery"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=open(tmp / "worker.log", "ab"))  # noqa: SIM115


def test_a_worker_killed_between_send_and_mark_loses_nothing(transactional_db: Any, people: Any, make_request: Any,
                                                             channels_on: Any, settings: Any, tmp_path: Path) -> None:
    settings.EPHEMERA_SLACK_WEBHOOK_URL = ""
    settings.EPHEMERA_EMAIL = None
    receiver = channels_on
    receiver.stall = threading.Event()  # the receiver takes the post and doesn't answer: "sent, not marked"
    rows = enqueue_many(people, make_request, 3)
    first = _start_worker(receiver.url, tmp_path)
    try:
        assert receiver.got_one.wait(60), (tmp_path / "worker.log").read_text()[-2000:]
        stuck = receiver.on(HOOK)[0].headers["X-Ephemera-Delivery"]
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        receiver.stall.set()
    receiver.stall = None
    row = Notification.objects.get(delivery_id=stuck)
    assert row.status == DeliveryStatus.PENDING and row.claimed_by, "the kill left the row claimed, not delivered"

    subprocess_worker = _start_worker(receiver.url, tmp_path)
    try:
        assert receiver.wait_for(lambda: not Notification.objects.filter(status=DeliveryStatus.PENDING).exists(), 60), \
            (tmp_path / "worker.log").read_text()[-2000:]
    finally:
        subprocess_worker.send_signal(signal.SIGTERM)
        assert subprocess_worker.wait(20) == 0
    seen = Counter(h.headers["X-Ephemera-Delivery"] for h in receiver.on(HOOK))
    # Every row arrived; only the one in flight at the kill came twice, with the same id.
    assert set(seen) == {str(r.delivery_id) for r in rows}
    assert seen[stuck] == 2 and all(n == 1 for k, n in seen.items() if k != stuck)
    assert all(h.signature_ok for h in receiver.on(HOOK))


def test_run_worker_once_delivers_and_run_reaper_is_the_same_command(people: Any, make_request: Any, channels_on: Any) -> None:
    from django.core.management import call_command

    from sessions.management.commands.run_reaper import Command as Reaper
    from sessions.management.commands.run_worker import Command as Worker

    assert issubclass(Reaper, Worker)
    enqueue_many(people, make_request, 1)
    call_command("run_worker", "--once", "--only", "delivery")
    assert not Notification.objects.exclude(status=DeliveryStatus.DELIVERED).exists()
    assert len(channels_on.on(HOOK)) == 1 and len(channels_on.on("/slack")) == 1
