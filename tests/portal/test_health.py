"""`/healthz` (alive) and `/readyz` (database, Redis when configured, the cluster), as probes ask them:
by pod IP, over plain HTTP, with no login; against kubesim with faults."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.test import Client

from portal import health

POD_IP = "10.1.2.3:8000"  # what the kubelet sends as Host: never in ALLOWED_HOSTS


@pytest.fixture
def over_tls(settings: Any) -> None:
    """Production's settings: https redirect, HSTS, a real host name."""
    settings.ALLOWED_HOSTS = ["ephemera.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")


def test_healthz_asks_nothing_of_the_database(db: Any, django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(0):
        resp = Client().get("/healthz")
    assert resp.status_code == 200 and resp.json() == {"status": "ok"}


def test_healthz_stays_up_when_the_database_is_down(db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Liveness must not restart every replica during a database outage.
    monkeypatch.setattr(health, "_check_database", _raises(RuntimeError("database is down")))
    assert Client().get("/healthz").status_code == 200
    assert Client().get("/readyz").status_code == 503


def test_readyz_is_ok_with_every_check_named(db: Any, kube: Any, settings: Any) -> None:
    settings.REDIS_URL = ""
    resp = Client().get("/readyz")
    assert resp.status_code == 200, resp.content
    body = resp.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "cluster"}  # no Redis configured: not asked
    assert all(check["status"] == "ok" for check in body["checks"].values())
    assert body["checks"]["cluster"]["name"] == settings.EPHEMERA_CLUSTER_NAME
    assert resp["Cache-Control"].startswith("max-age=0")


def test_readyz_is_503_naming_the_cluster_when_the_apiserver_is_down(db: Any, fresh_kube: Any, settings: Any) -> None:
    settings.REDIS_URL = ""
    assert Client().get("/readyz").status_code == 200
    fresh_kube.faults.unreachable(15)
    time.sleep(0.3)  # kubesim answers the fault request first, then drops off the network
    started = time.monotonic()
    resp = Client().get("/readyz")
    took = time.monotonic() - started
    assert resp.status_code == 503, resp.content
    body = resp.json()
    assert body["status"] == "unavailable" and body["failed"] == ["cluster"]
    assert body["checks"]["cluster"]["status"] in ("failed", "timeout")
    assert body["checks"]["cluster"]["name"] == settings.EPHEMERA_CLUSTER_NAME
    assert body["checks"]["database"]["status"] == "ok"
    assert took < health.CLUSTER_TIMEOUT + 1


def test_readyz_is_503_when_the_apiserver_says_it_is_not_ready(db: Any, fresh_kube: Any, settings: Any) -> None:
    settings.REDIS_URL = ""
    fresh_kube.faults.add(500, path="^/readyz$", message="[-]etcd failed: reason withheld")
    resp = Client().get("/readyz")
    assert resp.status_code == 503 and resp.json()["failed"] == ["cluster"]


def test_a_hung_check_fails_by_its_own_deadline(db: Any, kube: Any, settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.REDIS_URL = ""
    release = threading.Event()
    monkeypatch.setattr(health, "_check_database", lambda: release.wait(10) and None)
    monkeypatch.setattr(health, "DATABASE_TIMEOUT", 0.3)
    try:
        started = time.monotonic()
        resp = Client().get("/readyz")
        took = time.monotonic() - started
    finally:
        release.set()
    body = resp.json()
    assert resp.status_code == 503 and body["failed"] == ["database"]
    assert body["checks"]["database"]["status"] == "timeout"
    assert body["checks"]["cluster"]["status"] == "ok"  # asked side by side, not after
    assert took < 2


def test_readyz_checks_redis_when_it_is_the_channel_layer(db: Any, kube: Any, settings: Any) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    resp = Client().get("/readyz")
    assert resp.status_code == 503
    assert resp.json()["failed"] == ["redis"]


def test_the_failure_detail_stays_in_the_log(db: Any, settings: Any, monkeypatch: pytest.MonkeyPatch,
                                             caplog: pytest.LogCaptureFixture) -> None:
    settings.REDIS_URL = ""
    monkeypatch.setattr(health, "_check_cluster", _raises(RuntimeError("cannot reach https://10.0.0.1:6443 (internal)")))
    resp = Client().get("/readyz")
    assert resp.status_code == 503 and b"10.0.0.1" not in resp.content
    assert "10.0.0.1" in caplog.text


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_answer_by_pod_ip_over_plain_http_without_login(db: Any, over_tls: None, path: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "_check_cluster", lambda: None)
    resp = Client(HTTP_HOST=POD_IP).get(path)
    assert resp.status_code == 200, (resp.status_code, resp.content[:200])
    assert resp["Content-Type"] == "application/json"
    assert "Location" not in resp and "Set-Cookie" not in resp


def test_only_the_probe_paths_are_let_through(db: Any, over_tls: None) -> None:
    # The exemption is for the exact paths: the pages still refuse a foreign Host, and redirect.
    assert Client(HTTP_HOST=POD_IP).get("/login/").status_code == 400
    assert Client(HTTP_HOST=POD_IP).get("/healthz/").status_code == 400
    assert Client(HTTP_HOST="ephemera.example.com").get("/login/").status_code == 301


def test_probes_take_only_get(db: Any) -> None:
    assert Client().post("/readyz").status_code == 405
    assert Client().put("/healthz").status_code == 405


def _raises(exc: Exception) -> Any:
    def check() -> None:
        raise exc

    return check
