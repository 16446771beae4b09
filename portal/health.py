"""Probes: `/healthz` (the process is alive) and `/readyz` (it can serve: its dependencies answer).

Liveness asks nothing of anybody: a database or cluster outage must take the pods out of the
Service (readiness), never make the kubelet restart every replica at once (liveness).

Readiness runs its checks side by side, each in a worker thread with its own deadline, so
the answer comes within the longest deadline however a dependency hangs; the pool is
bounded, so a hung dependency costs a few threads, not one per probe. The JSON names every
check and its result and, on 503, which ones failed. What went wrong in detail (host names,
driver messages) goes to the log only: the probe answers anyone who can reach the pod.

`ProbeMiddleware` (first in MIDDLEWARE) answers the probe paths and `/metrics` before
anything else: the kubelet and Prometheus ask the pod by its IP (a Host that ALLOWED_HOSTS
refuses) over plain HTTP (which the https redirect would bounce), with no session or cookie.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)

# Seconds each check may take before it counts as failed.
DATABASE_TIMEOUT = 2.0
REDIS_TIMEOUT = 1.0
CLUSTER_TIMEOUT = 3.0  # the client's own READYZ_TIMEOUT (1 s connect, 2 s read) fits within

_pool = ThreadPoolExecutor(max_workers=6, thread_name_prefix="readyz")


class CheckFailed(Exception):
    """A dependency answered, but not with ok. The message is for the log."""


def _check_database() -> None:
    try:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # The query itself must not outlive the check (a locked catalog, a stuck server).
                cursor.execute("SET statement_timeout = %s", [int(DATABASE_TIMEOUT * 1000)])
            cursor.execute("SELECT 1")
    finally:
        # A pool thread's own connection: closed each time, so none lingers (and none keeps
        # a test database from being dropped).
        connection.close()


def _check_redis() -> None:
    # redis-py comes with channels-redis (the channel layer this checks); a connection of its
    # own, so a probe never waits behind the layer's blocking reads.
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT)
    try:
        if not client.ping():
            raise CheckFailed("PING was not answered with PONG")
    finally:
        client.close()


def _check_cluster() -> None:
    from portal.kube import get_client

    get_client().readyz()


def checks() -> dict[str, tuple[Callable[[], None], float]]:
    """The checks that apply to this installation: Redis only when it is the channel layer."""
    found: dict[str, tuple[Callable[[], None], float]] = {"database": (_check_database, DATABASE_TIMEOUT)}
    if settings.REDIS_URL:
        found["redis"] = (_check_redis, REDIS_TIMEOUT)
    found["cluster"] = (_check_cluster, CLUSTER_TIMEOUT)
    return found


def run_checks() -> tuple[bool, dict[str, dict[str, object]]]:
    """(all ok, {check: {"status": "ok" | "failed" | "timeout", "ms": ...}})."""
    started = time.monotonic()
    running: dict[str, tuple[Future[None], float]] = {
        name: (_pool.submit(check), timeout) for name, (check, timeout) in checks().items()
    }
    results: dict[str, dict[str, object]] = {}
    for name, (future, timeout) in running.items():
        remaining = max(0.0, started + timeout - time.monotonic())
        result: dict[str, object]
        try:
            future.result(timeout=remaining)
            result = {"status": "ok"}
        except FutureTimeout:
            result = {"status": "timeout", "timeout_seconds": timeout}
            logger.warning("readyz: %s did not answer within %s s", name, timeout)
        except Exception as exc:
            result = {"status": "failed"}
            logger.warning("readyz: %s failed: %s", name, _describe(exc))
        result["ms"] = round((time.monotonic() - started) * 1000)
        results[name] = result
    if "cluster" in results:
        results["cluster"]["name"] = settings.EPHEMERA_CLUSTER_NAME
    return all(r["status"] == "ok" for r in results.values()), results


def _describe(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return f"{type(exc).__name__}: {message}"[:300]


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    # Alive is all it says: see the module docstring for why nothing else is asked here.
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    ok, results = run_checks()
    if ok:
        return JsonResponse({"status": "ok", "checks": results})
    failed = [name for name, result in results.items() if result["status"] != "ok"]
    return JsonResponse({"status": "unavailable", "failed": failed, "checks": results}, status=503)


def _metrics(request: HttpRequest) -> HttpResponse:
    from portal.metrics import metrics_view

    return metrics_view(request)


PROBES: dict[str, Callable[[HttpRequest], HttpResponse]] = {"/healthz": healthz, "/readyz": readyz, "/metrics": _metrics}


class ProbeMiddleware:
    """Answers the probe and metrics paths before Host validation, the https redirect,
    sessions and authentication (see the module docstring). First in MIDDLEWARE."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = PROBES.get(request.path_info)
        if view is None or (view is _metrics and not settings.EPHEMERA_METRICS_TOKEN):
            # Metrics off: the ordinary way, to the same 404 page as any unknown address.
            return self.get_response(request)
        if request.method != "GET":
            return HttpResponseNotAllowed(["GET"])
        response = view(request)
        # SecurityMiddleware is skipped for these: its one header that matters here, by hand.
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response
