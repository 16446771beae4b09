"""`/metrics` in Prometheus' text format, behind a bearer token (EPHEMERA_METRICS_TOKEN).

Two kinds of numbers:

- What the database knows, read at scrape time (DatabaseCollector): sessions by status,
  requests by status, the oldest pending request, open oversight findings, notification
  deliveries by channel and result (the outbox's rows), and the approval
  wait and provisioning times of the last WINDOW_HOURS as *gauge histograms* (the rows'
  own timestamps: created -> decided, created -> running). Read from the rows rather than
  observed in the services because the database is shared: every replica reports the same
  numbers, whichever replica (or the reaper, or a restart) did the work, and nothing in the
  approval or provisioning path has to know about metrics. The price: these are a window,
  not ever-growing counters, so query them as they are (`histogram_quantile(0.9,
  ephemera_approval_wait_seconds_bucket)`), without rate(), and take one replica's (max),
  not the sum.
- What only this process sees, counted where it happens: terminal bytes and websockets
  (sessions/consumers.py), recording writes and their lag (sessions/recording/live.py),
  reaper passes (sessions/reaper.py), plus prometheus-client's process metrics. Each process
  exposes its own; sum them across replicas. The reaper is its own process: it serves its
  numbers on EPHEMERA_METRICS_PORT (serve_worker_metrics), behind the same token.

Without EPHEMERA_METRICS_TOKEN `/metrics` is an ordinary 404.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector, CollectorRegistry

logger = logging.getLogger(__name__)

WINDOW_HOURS = 24
# At most this many rows feed one window histogram: a scrape stays cheap on a busy installation.
WINDOW_ROWS = 50_000
APPROVAL_WAIT_BUCKETS = (10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400)
PROVISIONING_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300)

# --- counted in this process ----------------------------------------------------------
TERMINAL_BYTES = Counter(
    "ephemera_terminal_bytes", "Bytes through terminal websockets: in = typed by the user, out = sent to the browser.",
    ["direction"],
)
TERMINAL_WEBSOCKETS = Gauge("ephemera_terminal_websockets", "Terminal websockets open in this process.")
TERMINAL_CONNECTS = Counter("ephemera_terminal_websocket_connections", "Terminal websockets accepted by this process.")
RECORDING_BYTES = Counter(
    "ephemera_recording_bytes", "Recording bytes written: raw = asciicast text, stored = compressed.", ["kind"]
)
RECORDING_FLUSH_LAG = Histogram(
    "ephemera_recording_flush_lag_seconds", "Age of the oldest event of a recording chunk when it was stored.",
    buckets=(0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
RECORDING_FLUSH_FAILURES = Counter("ephemera_recording_flush_failures", "Recording writes that failed (kept and retried).")
REAPER_PASS = Histogram(
    "ephemera_reaper_pass_seconds", "Duration of one reaper pass.", buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
)
REAPER_LAST_PASS = Gauge("ephemera_reaper_last_pass_timestamp_seconds", "When the last reaper pass of this process ended.")
REAPER_ACTIONS = Counter("ephemera_reaper_actions", "What reaper passes did, by action.", ["action"])
REAPER_FINDINGS = Counter("ephemera_reaper_findings", "New oversight findings (debug access that bypassed Ephemera).")
REAPER_ERRORS = Counter("ephemera_reaper_errors", "Problems a reaper pass reported (retried next pass).")

for _direction in ("in", "out"):
    TERMINAL_BYTES.labels(_direction)
for _kind in ("raw", "stored"):
    RECORDING_BYTES.labels(_kind)


def terminal_opened(consumer: Any) -> None:
    """A terminal websocket was accepted (counted once, whatever later happens to it)."""
    consumer._metrics_open = True
    TERMINAL_WEBSOCKETS.inc()
    TERMINAL_CONNECTS.inc()


def terminal_closed(consumer: Any) -> None:
    if getattr(consumer, "_metrics_open", False):
        consumer._metrics_open = False
        TERMINAL_WEBSOCKETS.dec()


def terminal_output_frame(frame: bytes) -> None:
    """An output frame went to the browser: its payload, without the one-byte type."""
    TERMINAL_BYTES.labels("out").inc(max(0, len(frame) - 1))


def recording_written(batch: Any, chunk: Any) -> None:
    """A recording chunk is stored: its sizes, and how long its oldest event waited."""
    if chunk is not None:
        RECORDING_BYTES.labels("raw").inc(chunk.raw_size)
        RECORDING_BYTES.labels("stored").inc(len(chunk.data))
    times = [event[0] for event in batch.events] + [command[0] for command in batch.commands]
    if times:
        RECORDING_FLUSH_LAG.observe(max(0.0, time.time() - min(times)))


REAPER_COUNTED = ("requests_expired", "sessions_expired", "provisioning_abandoned", "sessions_gone",
                  "processes_stopped", "node_pods_deleted", "marked_clean", "requester_deactivated")


def reaper_pass(report: Any, seconds: float) -> None:
    REAPER_PASS.observe(seconds)
    REAPER_LAST_PASS.set_to_current_time()
    for action in REAPER_COUNTED:
        if count := getattr(report, action, 0):
            REAPER_ACTIONS.labels(action).inc(count)
    REAPER_FINDINGS.inc(report.findings)
    REAPER_ERRORS.inc(len(report.errors))


# --- read from the database at scrape time -------------------------------------------
def _window_histogram(name: str, doc: str, buckets: Sequence[float], series: dict[tuple[str, ...], list[float]],
                      labels: Sequence[str] = ()) -> GaugeHistogramMetricFamily:
    family = GaugeHistogramMetricFamily(name, doc, labels=list(labels))
    for label_values, values in series.items():
        counts = [(_le(bound), float(sum(1 for v in values if v <= bound))) for bound in buckets]
        counts.append(("+Inf", float(len(values))))
        family.add_metric(list(label_values), counts, gsum_value=float(sum(values)))
    return family


def _le(bound: float) -> str:
    return str(float(bound))


def _seconds(pairs: Iterable[tuple[datetime | None, datetime | None]]) -> list[float]:
    return [max(0.0, (end - start).total_seconds()) for start, end in pairs if start and end]


class DatabaseCollector(Collector):
    """The state in the database, read at each scrape (see the module docstring)."""

    def collect(self) -> Iterator[Metric]:
        try:
            families = list(self._families(timezone.now()))
        except Exception:
            logger.exception("metrics: reading the database failed")
            families = []
        up = GaugeMetricFamily("ephemera_database_metrics_up", "1 if this scrape could read the database's numbers.")
        up.add_metric([], 1.0 if families else 0.0)
        yield up
        yield from families

    def _families(self, now: datetime) -> Iterator[Metric]:
        # Through the app registry: the portal core names no app module (they depend on it).
        from django.apps import apps
        from django.db.models import Count, Min

        request_model = apps.get_model("approvals", "DebugRequest")
        session_model = apps.get_model("debug_sessions", "DebugSession")
        finding_model = apps.get_model("debug_sessions", "Finding")
        since = now - timedelta(hours=WINDOW_HOURS)

        live = ("provisioning", "running")
        by_status = dict(session_model.objects.filter(status__in=live).values_list("status").annotate(n=Count("pk")).order_by())
        sessions = GaugeMetricFamily("ephemera_sessions_active", "Debug sessions not yet over, by status.", labels=["status"])
        for status in live:
            sessions.add_metric([status], float(by_status.get(status, 0)))
        yield sessions

        statuses = [value for value, _label in request_model._meta.get_field("status").choices]
        counts = dict(request_model.objects.values_list("status").annotate(n=Count("pk")).order_by())
        requests = GaugeMetricFamily("ephemera_requests", "Debug requests, by status.", labels=["status"])
        for status in statuses:
            requests.add_metric([status], float(counts.get(status, 0)))
        yield requests

        oldest = request_model.objects.filter(status="pending").aggregate(oldest=Min("created_at"))["oldest"]
        yield GaugeMetricFamily(
            "ephemera_pending_request_oldest_age_seconds", "How long the oldest pending request has waited (0: none).",
            value=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
        )

        decided = request_model.objects.filter(decided_at__gte=since, status__in=("approved", "denied"), auto_approved=False)
        waits: dict[tuple[str, ...], list[float]] = {("approved",): [], ("denied",): []}
        for status, created, decided_at in decided.values_list("status", "created_at", "decided_at")[:WINDOW_ROWS]:
            waits[(status,)].extend(_seconds([(created, decided_at)]))
        yield _window_histogram(
            "ephemera_approval_wait_seconds",
            f"From request to decision, requests decided by people in the last {WINDOW_HOURS} h.",
            APPROVAL_WAIT_BUCKETS, waits, labels=["outcome"],
        )

        started = session_model.objects.filter(started_at__gte=since).values_list("created_at", "started_at")[:WINDOW_ROWS]
        yield _window_histogram(
            "ephemera_provisioning_seconds",
            f"From approval to a running debug container, sessions started in the last {WINDOW_HOURS} h.",
            PROVISIONING_BUCKETS, {(): _seconds(started)},
        )

        open_findings = dict(finding_model.objects.filter(gone_at__isnull=True).values_list("kind").annotate(n=Count("pk")).order_by())
        findings = GaugeMetricFamily("ephemera_findings_open", "Oversight findings still present in the cluster, by kind.", labels=["kind"])
        for kind in sorted({"ephemeral_container", "debug_pod", "long_session", *open_findings}):
            findings.add_metric([kind], float(open_findings.get(kind, 0)))
        yield findings

        yield from self._notifications(now)

    def _notifications(self, now: datetime) -> Iterator[Metric]:
        """The notification outbox (portal/notifications/): deliveries by channel and result."""
        from django.apps import apps
        from django.db.models import Count, Min

        try:
            model = apps.get_model("portal", "Notification")
        except LookupError:  # an installation from before notifications
            return
        rows = model.objects.values_list("channel", "status").annotate(n=Count("pk")).order_by()
        counts = {(channel, status): n for channel, status, n in rows}
        channels = [value for value, _label in model._meta.get_field("channel").choices]
        statuses = [value for value, _label in model._meta.get_field("status").choices]
        family = GaugeMetricFamily("ephemera_notifications", "Notification outbox rows, by channel and delivery result.",
                                   labels=["channel", "status"])
        for channel in channels:
            for status in statuses:
                family.add_metric([channel, status], float(counts.get((channel, status), 0)))
        yield family
        oldest = model.objects.filter(status="pending").aggregate(oldest=Min("created_at"))["oldest"]
        yield GaugeMetricFamily(
            "ephemera_notification_oldest_pending_age_seconds", "How long the oldest undelivered notification has waited.",
            value=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
        )


class _ProcessCollector(Collector):
    """This process's own metrics (prometheus-client's default registry), beside the database's."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


# What the portal's /metrics serves: one registry, so any exposition format (text or
# OpenMetrics, as the scraper asks) is written in one piece.
_portal_registry = CollectorRegistry(auto_describe=False)
_portal_registry.register(_ProcessCollector())
_portal_registry.register(DatabaseCollector())


# --- the endpoint ----------------------------------------------------------------------
def token_matches(authorization: str | None) -> bool:
    """Does the Authorization header carry the metrics token? Constant time in both the token
    and what was sent: the digests are compared, never the strings."""
    expected = settings.EPHEMERA_METRICS_TOKEN
    if not expected or not authorization:
        return False
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(hashlib.sha256(given.strip().encode()).digest(), hashlib.sha256(expected.encode()).digest())


def _unauthorized() -> HttpResponse:
    response = HttpResponse("A bearer token is required.\n", status=401, content_type="text/plain; charset=utf-8")
    response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


def metrics_view(request: HttpRequest) -> HttpResponse:
    if not settings.EPHEMERA_METRICS_TOKEN:
        raise Http404("metrics are off")
    if not token_matches(request.headers.get("Authorization")):
        logger.warning("metrics: scrape refused (missing or wrong bearer token) from %s", request.META.get("REMOTE_ADDR", "?"))
        return _unauthorized()
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    response = HttpResponse(encoder(_portal_registry), content_type=content_type)
    response["Cache-Control"] = "no-store"
    return response


# --- the worker's own endpoint ---------------------------------------------------------
class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (the stdlib's name)
        pass  # one line per scrape on stderr would drown the worker's log


def _worker_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    if environ.get("PATH_INFO") != "/metrics":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"Not Found\n"]
    if not token_matches(environ.get("HTTP_AUTHORIZATION")):
        start_response("401 Unauthorized", [("Content-Type", "text/plain"), ("WWW-Authenticate", 'Bearer realm="metrics"')])
        return [b"A bearer token is required.\n"]
    encoder, content_type = choose_encoder(environ.get("HTTP_ACCEPT", ""))
    start_response("200 OK", [("Content-Type", content_type), ("Cache-Control", "no-store")])
    return [encoder(REGISTRY)]


def serve_worker_metrics(*, port: int | None = None, host: str = "0.0.0.0") -> WSGIServer | None:  # noqa: S104  (scraped from other pods)
    """Serve this process's metrics on EPHEMERA_METRICS_PORT (for `run_reaper`), in a daemon
    thread (`port` 0: any free one). None when no port is set; never without the token."""
    if port is None:
        port = settings.EPHEMERA_METRICS_PORT
        if not port:
            return None
    if not settings.EPHEMERA_METRICS_TOKEN:
        return None
    server = make_server(host, port, _worker_app, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
