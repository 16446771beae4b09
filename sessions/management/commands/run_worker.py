"""`manage.py run_worker`: every background duty of Ephemera in one long-running process.

- reaper: session time limits and reconciling the cluster with the database (sessions.reaper),
  every EPHEMERA_REAPER_INTERVAL_SECONDS;
- delivery: the notification outbox, one thread per configured channel (portal.notifications);
- notices: session.ending_soon, ENDING_SOON_MINUTES before each time limit.

Safe to run more than once at a time (each duty is); `run_reaper` is the same command.
"""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from portal.metrics import serve_worker_metrics
from portal.notifications import delivery, worker
from portal.notifications.ending_soon import notify_ending_soon
from sessions.reaper import reap_once

DUTIES = ("reaper", "delivery", "notices")


class Command(BaseCommand):
    help = "Run the background duties: the reaper, notification delivery and ending-soon notices."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--once", action="store_true", help="one pass of each duty (delivery: everything due), then exit")
        parser.add_argument("--interval", type=float, default=None,
                            help="seconds between reaper passes (default EPHEMERA_REAPER_INTERVAL_SECONDS or 5)")
        parser.add_argument("--only", action="append", choices=DUTIES, default=None,
                            help="run only this duty (repeatable); default: all of them")

    def handle(self, *args: Any, **options: Any) -> None:
        duties = set(options["only"] or DUTIES)
        if options["once"]:
            self._once(duties)
            return
        stop = threading.Event()

        def on_signal(*_: object) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        serve_worker_metrics()  # this process's numbers (reaper passes), on EPHEMERA_METRICS_PORT if set
        threads = worker.start(stop, deliver="delivery" in duties, notices="notices" in duties)
        try:
            if "reaper" in duties:
                self._reap_until(stop, options["interval"] or settings.EPHEMERA_REAPER_INTERVAL_SECONDS)
            else:
                while not stop.wait(0.5):
                    pass
        finally:
            stop.set()
            for t in threads:
                t.join(settings.EPHEMERA_NOTIFY_TIMEOUT_SECONDS + 2)

    def _reap(self) -> None:
        try:
            report = reap_once()
            if report.any():
                self.stdout.write(f"reaper: {report}")
        except Exception as exc:  # one bad pass must not stop enforcement for good
            self.stderr.write(f"reaper pass failed: {type(exc).__name__}: {exc}")

    def _reap_until(self, stop: threading.Event, interval: float) -> None:
        while not stop.is_set():
            self._reap()
            # A long-lived worker: drop connections that broke or outlived CONN_MAX_AGE.
            close_old_connections()
            stop.wait(interval)

    def _once(self, duties: set[str]) -> None:
        if "reaper" in duties:
            self._reap()
        if "notices" in duties:
            notify_ending_soon()
        if "delivery" in duties:
            report = delivery.deliver_pending()
            if report.any():
                self.stdout.write(f"delivery: {report}")
