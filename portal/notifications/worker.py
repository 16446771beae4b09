"""The duties of `manage.py run_worker` besides the reaper: delivery and the ending-soon notices.

One thread per configured channel, so a receiver that hangs until its deadline delays only
its own messages; one thread for the ending-soon notices. Each polls the database every
POLL_SECONDS when it has nothing to do (an indexed query), which is what brings a new
notification out within about a second of its commit.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from django.db import close_old_connections, connection

from portal.notifications import delivery, outbox
from portal.notifications.ending_soon import notify_ending_soon

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.5
ENDING_SOON_EVERY_SECONDS = 5.0


def _loop(name: str, stop: threading.Event, step: Callable[[], bool], idle: float) -> None:
    """Run `step` until stopped; wait `idle` seconds whenever it did nothing (or failed)."""
    try:
        while not stop.is_set():
            try:
                busy = step()
            except Exception:  # the database blinked, say: keep going, this duty must not die
                logger.exception("worker %s: pass failed", name)
                busy = False
                connection.close()
            if not busy:
                close_old_connections()
                stop.wait(idle)
    finally:
        connection.close()  # this thread's own connection


def start(stop: threading.Event, *, deliver: bool = True, notices: bool = True) -> list[threading.Thread]:
    """Start the delivery and notice threads; they end when `stop` is set."""
    worker = delivery.new_worker_id()
    threads = []
    if deliver:
        for channel in outbox.channels():
            def step(channel: str = channel) -> bool:
                return delivery.deliver_one(channel, worker, delivery.DeliveryReport())

            threads.append(threading.Thread(target=_loop, args=(f"deliver-{channel}", stop, step, POLL_SECONDS),
                                            name=f"deliver-{channel}", daemon=True))
    if notices:
        def notice_step() -> bool:
            notify_ending_soon()
            return False  # once per interval, however many it found

        threads.append(threading.Thread(target=_loop, args=("ending-soon", stop, notice_step, ENDING_SOON_EVERY_SECONDS),
                                        name="ending-soon", daemon=True))
    for t in threads:
        t.start()
    return threads
