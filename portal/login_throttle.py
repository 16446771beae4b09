"""Throttling of failed sign-ins (the login form, the admin's login) and of bad API tokens.

Guarantees:
- A sign-in attempt reserves one failure on its account's and its address's counters before
  the password is checked, inside one transaction that locks both rows. Parallel guesses
  therefore cannot all slip in under the limit: the attempt that would exceed it is refused.
- Once a counter reaches its limit, every attempt on that account or from that address is
  refused (HTTP 429) without checking the password, so the right password fails too, until
  the lock ends (EPHEMERA_LOGIN_WINDOW_MINUTES after the failure that reached the limit).
- Counts live in the database (`LoginThrottle`): every portal replica sees the same ones.
- The audit trail gets at most three events per counter and window: the first failure, the
  lock, and the first refusal while locked; a flood cannot fill it.

A successful sign-in clears its account's counter and gives back its reserved address failure.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.http import HttpRequest
from django.utils import timezone

from portal.audit import AuditOrigin, record_event
from portal.models import LoginThrottle

Scope = LoginThrottle.Scope
_KEY_MAX = 150
_UA_MAX = 300
_PURGE_BATCH = 500


@dataclass(frozen=True)
class Counter:
    """One counter as an attempt left it."""

    scope: str
    key: str
    failures: int
    limit: int
    resets_at: datetime

    @property
    def locked(self) -> bool:
        return self.failures >= self.limit


@dataclass(frozen=True)
class Attempt:
    """A sign-in attempt: either refused (`refused_until`) or admitted with its reserved counters."""

    username: str
    origin: AuditOrigin
    counters: tuple[Counter, ...] = ()
    refused_until: datetime | None = None

    @property
    def locked_until(self) -> datetime | None:
        """When the lock this attempt's failure caused (if it did) ends."""
        ends = [c.resets_at for c in self.counters if c.locked]
        return max(ends) if ends else None


def _window() -> timedelta:
    return timedelta(minutes=settings.EPHEMERA_LOGIN_WINDOW_MINUTES)


def client_ip(request: HttpRequest) -> str | None:
    """The client's IP: REMOTE_ADDR, or behind our TLS proxy the right-most X-Forwarded-For hop.

    Only the right-most hop is the proxy's own word; anything left of it came from the client.
    """
    candidates = []
    if settings.EPHEMERA_BEHIND_TLS_PROXY:
        hops = [hop.strip() for hop in str(request.META.get("HTTP_X_FORWARDED_FOR", "")).split(",")]
        if hops and hops[-1]:
            candidates.append(hops[-1])
    candidates.append(str(request.META.get("REMOTE_ADDR", "")))
    for candidate in candidates:
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return None


def address_key(ip: str | None) -> str:
    """The counter key for an IP: IPv4 as is, IPv6 by /64 (one client usually holds a whole /64)."""
    if ip is None:
        return "unknown"
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((addr, 64), strict=False))
    return str(addr)


def account_key(username: str) -> str:
    # Case-folded: "Alice" and "alice" share a counter whatever the database's collation.
    return username.strip().casefold()[:_KEY_MAX]


def origin_of(request: HttpRequest) -> AuditOrigin:
    return AuditOrigin(ip=client_ip(request), user_agent=str(request.META.get("HTTP_USER_AGENT", ""))[:_UA_MAX])


def retry_minutes(until: datetime) -> int:
    return max(1, math.ceil((until - timezone.now()).total_seconds() / 60))


def refusal_message(until: datetime) -> str:
    minutes = retry_minutes(until)
    return f"Too many failed sign-ins; try again in {minutes} minute{'' if minutes == 1 else 's'}."


def _locked_row(scope: str, key: str, now: datetime) -> tuple[LoginThrottle, bool]:
    """The counter row, locked for this transaction, with an ended window already restarted."""
    row, created = LoginThrottle.objects.select_for_update().get_or_create(
        scope=scope, key=key, defaults={"resets_at": now + _window()}
    )
    if row.resets_at <= now:
        row.failures, row.refused, row.resets_at = 0, 0, now + _window()
    return row, created


def _purge_expired(now: datetime) -> None:
    """Drop counters whose window is over (they would restart at zero anyway).

    SKIP LOCKED (where the database has it): never wait on, or deadlock with, an attempt that
    holds a row; whatever is skipped goes next time.
    """
    with transaction.atomic():
        ids = list(
            LoginThrottle.objects.select_for_update(skip_locked=True)
            .filter(resets_at__lt=now)
            .values_list("pk", flat=True)[:_PURGE_BATCH]
        )
        if ids:
            LoginThrottle.objects.filter(pk__in=ids).delete()


def _audit(action: str, origin: AuditOrigin, data: dict[str, Any]) -> None:
    record_event(action=action, actor=None, origin=origin, data=data)


def _counter_data(rows: Sequence[tuple[LoginThrottle, int]]) -> list[dict[str, Any]]:
    return [{"scope": r.scope, "key": r.key, "failures": r.failures, "until": r.resets_at.isoformat()} for r, _ in rows]


def begin_login(*, request: HttpRequest, username: str) -> Attempt:
    """Admit a sign-in attempt by reserving a failure on its counters, or refuse it while locked."""
    now = timezone.now()
    origin = origin_of(request)
    wanted: list[tuple[str, str, int]] = []
    # Fixed order (account, then address) in every transaction: two attempts never deadlock.
    if account_key(username):
        wanted.append((Scope.ACCOUNT, account_key(username), settings.EPHEMERA_LOGIN_ACCOUNT_FAILURES))
    wanted.append((Scope.ADDRESS, address_key(origin.ip), settings.EPHEMERA_LOGIN_ADDRESS_FAILURES))
    created_any = False
    with transaction.atomic():
        rows: list[tuple[LoginThrottle, int]] = []
        for scope, key, limit in wanted:
            row, created = _locked_row(scope, key, now)
            created_any |= created
            rows.append((row, limit))
        locked = [(row, limit) for row, limit in rows if row.failures >= limit]
        if locked:
            for row, _ in locked:
                row.refused += 1
                row.save()
            if any(row.refused == 1 for row, _ in locked):
                _audit("auth.login_throttled", origin, {"username": username[:_KEY_MAX], "locked": _counter_data(locked)})
            return Attempt(username=username, origin=origin, refused_until=max(row.resets_at for row, _ in locked))
        for row, limit in rows:
            row.failures += 1
            if row.failures >= limit:
                # Locked for a whole window from the failure that reached the limit.
                row.resets_at = now + _window()
            row.save()
    if created_any:
        _purge_expired(now)
    counters = tuple(Counter(row.scope, row.key, row.failures, limit, row.resets_at) for row, limit in rows)
    return Attempt(username=username, origin=origin, counters=counters)


def login_failed(attempt: Attempt) -> None:
    """The attempt's password was wrong: its failures stay counted; audit the first and the lock."""
    first = [c for c in attempt.counters if c.failures == 1]
    locking = [c for c in attempt.counters if c.failures == c.limit]
    if not (first or locking):
        return
    with transaction.atomic():
        if first:
            _audit("auth.login_failed", attempt.origin, {"username": attempt.username[:_KEY_MAX]})
        if locking:
            data = [{"scope": c.scope, "key": c.key, "failures": c.failures, "until": c.resets_at.isoformat()} for c in locking]
            _audit("auth.login_locked", attempt.origin, {"username": attempt.username[:_KEY_MAX], "locked": data})


def login_succeeded(attempt: Attempt) -> None:
    """Right password: the account starts over; the address gets its reserved failure back."""
    with transaction.atomic():
        for c in attempt.counters:
            if c.scope == Scope.ACCOUNT:
                LoginThrottle.objects.filter(scope=c.scope, key=c.key).delete()
            else:
                LoginThrottle.objects.filter(scope=c.scope, key=c.key, failures__gt=0).update(failures=F("failures") - 1)


def token_refused_until(request: HttpRequest) -> datetime | None:
    """While this address is locked for bad tokens, when the lock ends (audits the first refusal)."""
    now = timezone.now()
    key = address_key(client_ip(request))
    limit = settings.EPHEMERA_LOGIN_ADDRESS_FAILURES
    # A read first: a locked address is rare, and every API call passes here.
    if not LoginThrottle.objects.filter(scope=Scope.TOKEN, key=key, failures__gte=limit, resets_at__gt=now).exists():
        return None
    with transaction.atomic():
        row, _ = _locked_row(Scope.TOKEN, key, now)
        if row.failures < limit:
            return None
        row.refused += 1
        row.save()
        if row.refused == 1:
            _audit("auth.token_throttled", origin_of(request), {"locked": _counter_data([(row, limit)])})
        return row.resets_at


def token_failed(request: HttpRequest) -> None:
    """A bad bearer token from this address: count it; audit the first of the window and the lock."""
    now = timezone.now()
    origin = origin_of(request)
    limit = settings.EPHEMERA_LOGIN_ADDRESS_FAILURES
    with transaction.atomic():
        row, created = _locked_row(Scope.TOKEN, address_key(origin.ip), now)
        row.failures += 1
        if row.failures == limit:
            row.resets_at = now + _window()
        row.save()
        if row.failures == 1:
            _audit("auth.token_failed", origin, {})
        if row.failures == limit:
            _audit("auth.token_locked", origin, {"locked": _counter_data([(row, limit)])})
    if created:
        _purge_expired(now)
