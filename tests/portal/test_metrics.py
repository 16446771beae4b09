"""`/metrics`: Prometheus text behind a bearer token (404 without the setting), the numbers the
database knows read at scrape time, and what the reaper and recording count where it happens."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from portal import metrics
from tests.portal.test_settings import start

TOKEN = "metrics-token-0123456789abcdef"  # noqa: S105  (a test value)


@pytest.fixture
def metrics_on(settings: Any) -> str:
    settings.EPHEMERA_METRICS_TOKEN = TOKEN
    return TOKEN


def scrape(token: str | None = TOKEN, host: str = "10.1.2.3:8000") -> Any:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token is not None else {}
    return Client(HTTP_HOST=host).get("/metrics", **headers)


def samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(body: bytes, name: str, **labels: str) -> float:
    return samples(body)[(name, tuple(sorted(labels.items())))]


def test_without_the_setting_metrics_is_an_ordinary_404(db: Any, settings: Any) -> None:
    settings.EPHEMERA_METRICS_TOKEN = ""
    resp = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer anything-at-all-here")
    unknown = Client().get("/no-such-page")
    assert resp.status_code == 404 and unknown.status_code == 404
    assert b"ephemera_" not in resp.content
    assert resp["Content-Type"] == unknown["Content-Type"]


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", f"Basic {TOKEN}", f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x", f"Bearer {TOKEN.upper()}",
     TOKEN],
)
def test_a_scrape_without_the_exact_token_is_refused(db: Any, metrics_on: str, authorization: str | None) -> None:
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization is not None else {}
    resp = Client().get("/metrics", **headers)
    assert resp.status_code == 401
    assert resp["WWW-Authenticate"].startswith("Bearer")
    assert b"ephemera_" not in resp.content


def test_the_token_is_never_taken_from_a_session_login(db: Any, metrics_on: str, admin_user: Any) -> None:
    client = Client()
    client.force_login(admin_user)
    assert client.get("/metrics").status_code == 401


def test_a_scrape_by_pod_ip_over_plain_http_gets_prometheus_text(db: Any, metrics_on: str, settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["ephemera.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    resp = scrape()
    assert resp.status_code == 200, resp.content[:300]
    assert resp["Content-Type"].startswith("text/plain; version=")
    body = resp.content
    assert value(body, "ephemera_database_metrics_up") == 1
    assert "python_info" in {name for name, _labels in samples(body)}  # the process's own numbers too
    assert value(body, "ephemera_terminal_bytes_total", direction="in") >= 0


def test_an_openmetrics_scraper_gets_openmetrics_in_one_piece(db: Any, metrics_on: str) -> None:
    resp = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}",
                        HTTP_ACCEPT="application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")
    assert resp["Content-Type"].startswith("application/openmetrics-text")
    text = resp.content.decode()
    assert text.count("# EOF") == 1 and text.endswith("# EOF\n")
    assert "# TYPE ephemera_approval_wait_seconds gaugehistogram" in text


def test_database_numbers_are_read_at_scrape_time(db: Any, metrics_on: str, alice: Any, bob: Any, make_request: Any) -> None:
    from sessions.models import DebugSession

    now = timezone.now()
    make_request(alice)  # pending
    make_request(alice, created_at=now - timedelta(minutes=20), expires_at=now + timedelta(minutes=40))  # pending, older
    # Approved by a person 90 s after it was asked; provisioned in 4 s.
    approved = make_request(alice, status="approved", created_at=now - timedelta(minutes=5),
                            decided_at=now - timedelta(minutes=5) + timedelta(seconds=90))
    make_request(alice, status="denied", created_at=now - timedelta(hours=1), decided_at=now - timedelta(minutes=59, seconds=30))
    make_request(alice, status="approved", auto_approved=True, created_at=now, decided_at=now)  # nobody waited
    # Decided before the window: not in the histograms, still counted by status.
    make_request(alice, status="approved", created_at=now - timedelta(days=3), decided_at=now - timedelta(days=3))
    DebugSession.objects.create(request=approved, status="running", created_at=now - timedelta(seconds=200),
                                started_at=now - timedelta(seconds=196), namespace="default", pod="p", container_name="debugger-1")
    for minutes in (1, 2):  # two more running sessions, made at different times: still one count
        other = make_request(alice, status="approved", created_at=now - timedelta(days=2), decided_at=now - timedelta(days=2))
        DebugSession.objects.create(request=other, status="running", created_at=now - timedelta(days=2, minutes=minutes),
                                    namespace="default", pod="p", container_name=f"debugger-{minutes + 1}")

    body = scrape().content
    assert value(body, "ephemera_requests", status="pending") == 2
    assert value(body, "ephemera_requests", status="approved") == 5
    assert value(body, "ephemera_requests", status="denied") == 1
    assert value(body, "ephemera_requests", status="expired") == 0
    assert value(body, "ephemera_sessions_active", status="running") == 3
    assert value(body, "ephemera_sessions_active", status="provisioning") == 0
    assert 20 * 60 - 5 <= value(body, "ephemera_pending_request_oldest_age_seconds") <= 20 * 60 + 60

    assert value(body, "ephemera_approval_wait_seconds_bucket", outcome="approved", le="60.0") == 0
    assert value(body, "ephemera_approval_wait_seconds_bucket", outcome="approved", le="120.0") == 1
    assert value(body, "ephemera_approval_wait_seconds_bucket", outcome="approved", le="+Inf") == 1
    assert value(body, "ephemera_approval_wait_seconds_gsum", outcome="approved") == pytest.approx(90)
    assert value(body, "ephemera_approval_wait_seconds_bucket", outcome="denied", le="30.0") == 1
    assert value(body, "ephemera_provisioning_seconds_bucket", le="2.0") == 0
    assert value(body, "ephemera_provisioning_seconds_bucket", le="5.0") == 1
    assert value(body, "ephemera_provisioning_seconds_gcount") == 1


def test_open_findings_are_counted_by_kind(db: Any, metrics_on: str) -> None:
    from sessions.models import Finding

    now = timezone.now()
    Finding.objects.create(key="a", kind="ephemeral_container", first_seen_at=now, last_seen_at=now)
    Finding.objects.create(key="b", kind="ephemeral_container", first_seen_at=now, last_seen_at=now, gone_at=now)
    body = scrape().content
    assert value(body, "ephemera_findings_open", kind="ephemeral_container") == 1
    assert value(body, "ephemera_findings_open", kind="debug_pod") == 0


def test_notification_deliveries_are_counted_by_channel_and_result(db: Any, metrics_on: str) -> None:
    from portal.notifications.models import Notification

    now = timezone.now()
    for status, age in (("delivered", 1), ("delivered", 2), ("failed", 3), ("pending", 7)):
        Notification.objects.create(event="request.created", channel="webhook", stream="s", payload={}, status=status,
                                    created_at=now - timedelta(minutes=age), next_attempt_at=now)
    body = scrape().content
    assert value(body, "ephemera_notifications", channel="webhook", status="delivered") == 2
    assert value(body, "ephemera_notifications", channel="webhook", status="failed") == 1
    assert value(body, "ephemera_notifications", channel="slack", status="pending") == 0
    assert 7 * 60 - 5 <= value(body, "ephemera_notification_oldest_pending_age_seconds") <= 7 * 60 + 60


def test_a_database_failure_is_a_number_not_a_500(db: Any, metrics_on: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Any, now: Any) -> Any:
        raise RuntimeError("database is down")
        yield  # a generator, like the real one

    monkeypatch.setattr(metrics.DatabaseCollector, "_families", broken)
    resp = scrape()
    assert resp.status_code == 200
    assert value(resp.content, "ephemera_database_metrics_up") == 0


def test_a_reaper_pass_is_timed_and_what_it_did_counted(db: Any, kube: Any, alice: Any, make_request: Any) -> None:
    from sessions.reaper import reap_once

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    passes = sample("ephemera_reaper_pass_seconds_count")
    expired = sample("ephemera_reaper_actions_total", action="requests_expired")
    make_request(alice, expires_at=timezone.now() - timedelta(minutes=1))
    report = reap_once()
    assert report.requests_expired == 1
    assert sample("ephemera_reaper_pass_seconds_count") == passes + 1
    assert sample("ephemera_reaper_actions_total", action="requests_expired") == expired + 1
    assert sample("ephemera_reaper_last_pass_timestamp_seconds") > 0


@pytest.mark.django_db(transaction=True)  # the write runs in a worker thread, as in production
def test_recording_writes_count_their_bytes_and_lag(alice: Any, bob: Any, make_request: Any) -> None:
    import time

    from sessions.models import DebugSession
    from sessions.recording import live
    from sessions.recording.recorder import Recorder

    req = make_request(alice, status="approved")
    session = DebugSession.objects.create(request=req, status="running", created_at=timezone.now(),
                                          namespace="default", pod="p", container_name="debugger-1")
    sid = str(session.pk)
    raw = REGISTRY.get_sample_value("ephemera_recording_bytes_total", {"kind": "raw"}) or 0.0
    lags = REGISTRY.get_sample_value("ephemera_recording_flush_lag_seconds_count") or 0.0

    async def write() -> None:
        rec = Recorder(sid, record_input=True)
        live._live[sid] = live._Live(rec)
        try:
            rec.output(b"hello from the shell\r\n")
            rec._batch.events[0] = (time.time() - 3, *rec._batch.events[0][1:])  # waited 3 s
            await live.flush(sid)
        finally:
            live._live.pop(sid, None)

    asyncio.run(write())

    live.close_writer_connection()  # the writer thread's connection: gone before teardown
    assert (REGISTRY.get_sample_value("ephemera_recording_bytes_total", {"kind": "raw"}) or 0) > raw
    assert REGISTRY.get_sample_value("ephemera_recording_flush_lag_seconds_count") == lags + 1
    assert (REGISTRY.get_sample_value("ephemera_recording_flush_lag_seconds_bucket", {"le": "2.0"}) or 0) < lags + 1


def test_the_worker_serves_its_own_metrics_behind_the_same_token(metrics_on: str) -> None:
    server = metrics.serve_worker_metrics(port=0, host="127.0.0.1")
    assert server is not None
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=5)  # noqa: S310  (our own test server)
        assert refused.value.code == 401
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(request, timeout=5) as resp:  # noqa: S310
            body = resp.read()
        assert b"ephemera_reaper_pass_seconds" in body
        assert b"ephemera_requests" not in body  # the database's numbers come from the portal only
    finally:
        server.shutdown()
        server.server_close()


def test_the_worker_serves_nothing_without_a_token(settings: Any) -> None:
    settings.EPHEMERA_METRICS_TOKEN = ""
    assert metrics.serve_worker_metrics(port=0, host="127.0.0.1") is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"EPHEMERA_METRICS_TOKEN": "short"}, "EPHEMERA_METRICS_TOKEN is shorter than 16 characters"),
        ({"EPHEMERA_METRICS_PORT": "9100"}, "EPHEMERA_METRICS_PORT needs EPHEMERA_METRICS_TOKEN"),
        ({"EPHEMERA_METRICS_TOKEN": TOKEN, "EPHEMERA_METRICS_PORT": "port"}, "EPHEMERA_METRICS_PORT='port' is not an integer"),
    ],
)
def test_bad_metrics_settings_stop_start_up(env: dict[str, str], message: str) -> None:
    result = start({"EPHEMERA_DEMO": "1", **env})
    assert result.returncode != 0 and message in result.stderr, result.stderr[-2000:]


def test_the_token_may_come_from_a_mounted_file(tmp_path: Path) -> None:
    path = tmp_path / "metrics-token"
    path.write_text(TOKEN + "\n")
    result = start({"EPHEMERA_DEMO": "1", "EPHEMERA_METRICS_TOKEN_FILE": str(path)}, probe="EPHEMERA_METRICS_TOKEN")
    assert result.returncode == 0 and TOKEN in result.stdout, result.stderr[-2000:]


def test_run_worker_serves_its_metrics_on_the_metrics_port(tmp_path: Path) -> None:
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    from tests.portal.test_settings import ROOT

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EPHEMERA_", "DJANGO_SETTINGS_MODULE", "KUBECONFIG"))}
    env.update({"EPHEMERA_DEMO": "1", "EPHEMERA_VAR_DIR": str(tmp_path), "EPHEMERA_METRICS_TOKEN": TOKEN,
                "EPHEMERA_METRICS_PORT": str(port), "EPHEMERA_REAPER_INTERVAL_SECONDS": "1"})
    worker = subprocess.Popen([sys.executable, "manage.py", "run_worker", "--only", "reaper"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        deadline = time.monotonic() + 30
        while True:
            try:
                request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
                with urllib.request.urlopen(request, timeout=2) as resp:  # noqa: S310  (our own worker)
                    body = resp.read()
                break
            except (urllib.error.URLError, ConnectionError):
                assert worker.poll() is None, "the worker exited"
                assert time.monotonic() < deadline, "the worker never served its metrics"
                time.sleep(0.2)
        assert b"# TYPE ephemera_reaper_pass_seconds histogram" in body
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=2)  # noqa: S310
        assert refused.value.code == 401
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(5)
