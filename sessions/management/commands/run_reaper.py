"""`manage.py run_reaper`: the long-running worker that ends sessions on time and cleans up."""

from __future__ import annotations

import signal
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from sessions.reaper import reap_once


class Command(BaseCommand):
    help = "Enforce session time limits and reconcile the cluster with the database, every few seconds."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--once", action="store_true", help="run one pass and exit")
        parser.add_argument("--interval", type=float, default=None,
                            help="seconds between passes (default EPHEMERA_REAPER_INTERVAL_SECONDS or 5)")

    def handle(self, *args: Any, **options: Any) -> None:
        interval = options["interval"] or settings.EPHEMERA_REAPER_INTERVAL_SECONDS
        stopping = False

        def stop(*_: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        while True:
            try:
                report = reap_once()
                if report.any():
                    self.stdout.write(f"reaper: {report}")
            except Exception as exc:  # one bad pass must not stop enforcement for good
                self.stderr.write(f"reaper pass failed: {type(exc).__name__}: {exc}")
            if options["once"] or stopping:
                return
            # A long-lived worker: drop connections that broke or outlived CONN_MAX_AGE.
            close_old_connections()
            deadline = time.monotonic() + interval
            while not stopping and time.monotonic() < deadline:
                time.sleep(0.2)
            if stopping:
                return
