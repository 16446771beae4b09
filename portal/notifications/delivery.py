"""Delivering the outbox: claim a due row, send it, mark it; retry failures with backoff.

Guarantees (tests/notifications/):
- delivered means the receiver said so: a 2xx, or the mail server accepting the message;
- two workers never send a row twice: a row is claimed before it is sent, by a conditional
  UPDATE that only one worker's can match (on PostgreSQL the candidate is first row-locked
  with `FOR UPDATE SKIP LOCKED`, so workers pass each other instead of queueing; on SQLite
  writers serialize anyway). The claim is a lease longer than an attempt's hard deadline;
- a worker killed between send and mark leaves its claim to run out; the row is then sent
  again with the same delivery id: at most that one message twice, and nothing lost;
- in order per request and receiver: a row waits while an older row of its stream is pending;
- a failing row is retried with exponential backoff (FIRST_RETRY, doubling, at most
  MAX_RETRY apart) for MAX_RETRY_AGE after its event, then marked failed (an admin can retry).

No transaction is held while sending: the claim commits first, the mark is another one.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from portal.notifications.channels import DeliveryError, email, slack, webhook
from portal.notifications.constants import Channel, DeliveryStatus
from portal.notifications.models import Notification

logger = logging.getLogger(__name__)

FIRST_RETRY = timedelta(seconds=2)
MAX_RETRY = timedelta(minutes=10)
MAX_RETRY_AGE = timedelta(hours=24)

SENDERS: dict[str, Callable[[Notification], None]] = {
    Channel.WEBHOOK: webhook.send,
    Channel.SLACK: slack.send,
    Channel.EMAIL: email.send,
}


def lease() -> timedelta:
    """How long a claim holds: well past the attempt's hard deadline, so it never runs out mid-send."""
    return timedelta(seconds=2 * settings.EPHEMERA_NOTIFY_TIMEOUT_SECONDS + 5)


def backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failure: 2 s, 4 s, 8 s ... at most MAX_RETRY, with jitter."""
    delay = min(FIRST_RETRY * (2 ** max(0, attempts - 1)), MAX_RETRY)
    return delay * random.uniform(0.9, 1.1)


def new_worker_id() -> str:
    return uuid.uuid4().hex


@dataclass
class DeliveryReport:
    delivered: int = 0
    failed: int = 0
    gave_up: int = 0
    errors: list[str] = field(default_factory=list)

    def any(self) -> bool:
        return bool(self.delivered or self.failed or self.gave_up)


def due(channel: str, now: datetime) -> QuerySet[Notification]:
    """Rows ready to send now: pending, their time come, not claimed (or the claim ran out), and
    no older row of their stream still pending. Oldest first."""
    older_pending = Notification.objects.filter(stream=OuterRef("stream"), id__lt=OuterRef("id"), status=DeliveryStatus.PENDING)
    return (
        Notification.objects.filter(channel=channel, status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .exclude(Exists(older_pending))
        .order_by("id")
    )


def _take(row_id: int, attempts: int, worker: str, now: datetime) -> bool:
    """The claim itself: only the worker whose UPDATE matches the row as it read it gets it."""
    return bool(
        Notification.objects.filter(pk=row_id, status=DeliveryStatus.PENDING, attempts=attempts)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .update(claimed_by=worker, claimed_until=now + lease(), attempts=F("attempts") + 1, last_attempt_at=now)
    )


def claim(channel: str, worker: str) -> Notification | None:
    """Claim the next due row of this channel for `worker`, or None."""
    now = timezone.now()
    if connection.features.has_select_for_update_skip_locked:
        with transaction.atomic():
            row = due(channel, now).select_for_update(skip_locked=True).only("id", "attempts").first()
            if row is None or not _take(row.pk, row.attempts, worker, now):
                return None
    else:
        # SQLite: no row locks; the conditional UPDATE decides, one writer at a time.
        for row in due(channel, now).only("id", "attempts")[:20]:
            if _take(row.pk, row.attempts, worker, now):
                break
        else:
            return None
    return Notification.objects.get(pk=row.pk)


def _mark_delivered(row: Notification, worker: str) -> None:
    done = Notification.objects.filter(pk=row.pk, claimed_by=worker).update(
        status=DeliveryStatus.DELIVERED, delivered_at=timezone.now(), claimed_by="", claimed_until=None, last_error=""
    )
    if not done:  # only if an attempt outlived its lease, which the deadline prevents
        logger.warning("notification %s was delivered but its claim had run out", row.delivery_id)


def _mark_failed(row: Notification, worker: str, error: str) -> bool:
    """Schedule the retry, or give up past MAX_RETRY_AGE; True if it gave up."""
    now = timezone.now()
    give_up = now - row.created_at >= MAX_RETRY_AGE
    Notification.objects.filter(pk=row.pk, claimed_by=worker).update(
        status=DeliveryStatus.FAILED if give_up else DeliveryStatus.PENDING,
        next_attempt_at=now + backoff(row.attempts),
        claimed_by="",
        claimed_until=None,
        last_error=error[:300],
    )
    return give_up


def deliver_one(channel: str, worker: str, report: DeliveryReport) -> bool:
    """Claim, send and mark one row; False when nothing was due."""
    row = claim(channel, worker)
    if row is None:
        return False
    try:
        SENDERS[row.channel](row)
    except DeliveryError as exc:
        error = str(exc)
    except Exception as exc:  # a bug in rendering must not stop every other delivery
        logger.exception("notification %s: sending failed", row.delivery_id)
        error = f"internal error: {type(exc).__name__}"
    else:
        _mark_delivered(row, worker)
        report.delivered += 1
        return True
    if _mark_failed(row, worker, error):
        report.gave_up += 1
        logger.error("notification %s (%s via %s) failed for %s; giving up: %s", row.delivery_id, row.event, row.channel, MAX_RETRY_AGE, error)
    else:
        report.failed += 1
        logger.warning("notification %s (%s via %s) attempt %d failed: %s", row.delivery_id, row.event, row.channel, row.attempts, error)
    report.errors.append(error)
    return True


def deliver_pending(*, channel: str | None = None, worker: str | None = None, limit: int = 100) -> DeliveryReport:
    """Deliver what is due now (at most `limit` attempts per channel); for tests and `run_worker --once`."""
    worker = worker or new_worker_id()
    report = DeliveryReport()
    for ch in [channel] if channel else list(SENDERS):
        for _ in range(limit):
            if not deliver_one(ch, worker, report):
                break
    return report


def retry(rows: QuerySet[Notification]) -> int:
    """An admin's retry: the row is due now (a row past MAX_RETRY_AGE gets this one attempt, and
    is marked failed again if it fails). Delivered rows and a row being sent right now are left alone."""
    now = timezone.now()
    return rows.exclude(status=DeliveryStatus.DELIVERED).filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)).update(
        status=DeliveryStatus.PENDING, next_attempt_at=now, claimed_by="", claimed_until=None
    )
