"""Shared fixtures: personas, API clients with real bearer tokens, and kubesim as the cluster."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone
from rest_framework.test import APIClient

TARGET_CONTAINER = "distroless-nginx-ctr"


def _file_backed_sqlite_test_db() -> None:
    """Give the SQLite test database a file of this process's own.

    Django's default in-memory shared-cache test database answers concurrent writers with
    "database table is locked" instead of waiting, so tests with real threads (decided once,
    audit chain) would test SQLite's shared cache instead of the IMMEDIATE transactions and
    busy timeout production runs with. One file per process: parallel runs don't collide.
    """
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        name = os.path.join(tempfile.gettempdir(), f"ephemera-test-{os.getpid()}.sqlite3")
        db.setdefault("TEST", {})["NAME"] = name


_file_backed_sqlite_test_db()


@contextmanager
def _setup_unaudited() -> Iterator[None]:
    """Personas and their tokens are the scene, not the subject: drop the role events their
    setup wrote (portal.role_audit), so a test sees only the events of what it does.

    Only the chain's tail goes, and only if everything in it since the block began is a role
    event (under the chain's own writer lock): an event a background thread wrote meanwhile
    keeps the whole tail, so the chain always stays valid."""
    from django.db import transaction

    from portal.audit import _lock_chain
    from portal.models import AuditEvent

    last = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    yield
    with transaction.atomic():
        _lock_chain()
        tail = AuditEvent.objects.filter(id__gt=last)
        if not tail.exclude(action__regex=r"^(user|token|group)\.").exists():
            tail.delete()


def _make_user(name: str, *, group: str | None = None, superuser: bool = False) -> User:
    with _setup_unaudited():
        user = User.objects.create_user(username=name, password=f"{name}-demo-pass", email=f"{name}@example.com")
        if superuser:
            user.is_superuser = user.is_staff = True
            user.save()
        if group:
            user.groups.add(Group.objects.get_or_create(name=group)[0])
    return user


@pytest.fixture
def alice(db: Any) -> User:
    """A requester."""
    return _make_user("alice")


@pytest.fixture
def bob(db: Any, settings: Any) -> User:
    return _make_user("bob", group=settings.EPHEMERA_APPROVER_GROUP)


@pytest.fixture
def carol(db: Any, settings: Any) -> User:
    return _make_user("carol", group=settings.EPHEMERA_APPROVER_GROUP)


@pytest.fixture
def dave(db: Any, settings: Any) -> User:
    """An auditor."""
    return _make_user("dave", group=settings.EPHEMERA_AUDITOR_GROUP)


@pytest.fixture
def admin_user(db: Any) -> User:
    return _make_user("admin", superuser=True)


@pytest.fixture
def eve(db: Any) -> User:
    """Another plain user, with no business with alice's requests."""
    return _make_user("eve")


@pytest.fixture
def people(alice: User, bob: User, carol: User, dave: User, admin_user: User, eve: User) -> SimpleNamespace:
    return SimpleNamespace(alice=alice, bob=bob, carol=carol, dave=dave, admin=admin_user, eve=eve)


@pytest.fixture
def api_client_for(db: Any) -> Callable[[User | None], APIClient]:
    """An API client authenticated with a real bearer token for `user` (None: anonymous)."""
    from portal.tokens import create_token

    tokens: dict[int, str] = {}  # one token per user and test: a client made mid-test writes nothing

    def make(user: User | None) -> APIClient:
        client = APIClient()
        if user is not None:
            if user.pk not in tokens:
                with _setup_unaudited():
                    tokens[user.pk] = create_token(user, name="test")
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens[user.pk]}")
        return client

    return make


def _point_at(cluster: Any, settings: Any) -> None:
    from portal.kube import config as kube_config
    from portal.kube import reset_client

    settings.EPHEMERA_KUBECONFIG = str(cluster.kubeconfig)
    settings.EPHEMERA_KUBE_CONTEXT = ""
    kube_config.reset()
    reset_client()


def _forget() -> None:
    from portal.kube import config as kube_config
    from portal.kube import reset_client

    kube_config.reset()
    reset_client()


@pytest.fixture
def kube(kubesim_session_cluster: Any, settings: Any) -> Iterator[Any]:
    """The shared kubesim (real HTTPS apiserver) as the portal's cluster. Don't break it."""
    _point_at(kubesim_session_cluster, settings)
    yield kubesim_session_cluster
    kubesim_session_cluster.faults.clear()
    _forget()


@pytest.fixture
def fresh_kube(kubesim_cluster: Any, settings: Any) -> Iterator[Any]:
    """A kubesim of this test's own, for tests that delete pods or inject faults."""
    _point_at(kubesim_cluster, settings)
    yield kubesim_cluster
    _forget()


@pytest.fixture
def nginx_pod(kube: Any) -> str:
    from portal.kube import get_client

    return next(p.name for p in get_client().list_pods("default") if p.name.startswith("distroless-nginx-"))


@pytest.fixture
def make_request(db: Any) -> Callable[..., Any]:
    """A pending DebugRequest written directly (for decision tests that don't need a cluster)."""
    from approvals.models import DebugRequest

    def make(requester: User, **overrides: Any) -> DebugRequest:
        now = timezone.now()
        fields: dict[str, Any] = {
            "requester": requester,
            "created_at": now,
            "namespace": "default",
            "pod": "distroless-nginx-x",
            "container": TARGET_CONTAINER,
            "image": "busybox",
            "profile": "general",
            "reason": "debugging a 502",
            "duration_minutes": 15,
            "approvals_required": 1,
            "expires_at": now + timedelta(minutes=60),
        }
        fields.update(overrides)
        return DebugRequest.objects.create(**fields)

    return make


@pytest.fixture(autouse=True)
def _fresh_channel_layer() -> Iterator[None]:
    """Each test gets channel layer instances of its own. channels-redis binds its receive lock
    to the event loop of the first receive(); every async test runs its own loop, so one test
    that ends mid-receive would otherwise break every later websocket test (only with REDIS_URL)."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture
def use_policy(settings: Any) -> Callable[[str], Any]:
    """Put a policy (YAML text, the EPHEMERA_POLICY_FILE format) in force for this test."""
    from approvals.policy.schema import parse

    def apply(text: str) -> Any:
        settings.EPHEMERA_POLICY = parse(text, source="test-policy.yaml", default_approvers=settings.EPHEMERA_APPROVER_GROUP)
        return settings.EPHEMERA_POLICY

    return apply


@pytest.fixture(autouse=True)
def _policy_recorded_afresh() -> Iterator[None]:
    """The process remembers which policy it has seen recorded in the audit trail (a request
    creation then skips the query); each test's database starts without that event."""
    from approvals import services

    services._recorded_sha.clear()
    yield
    services._recorded_sha.clear()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """An end answered by a view, the API or a terminal stops the cluster side in a thread
    (sessions.cluster_stop). Let those finish before any fixture is torn down (this runs before
    pytest's own teardown): on PostgreSQL a thread still holding its row lock made the test
    database's flush fail and the next test inherit the rows."""
    from sessions import cluster_stop

    cluster_stop.join_background(60)
    if nextitem is None:  # the last test: the session's fixtures (the test database) go next
        from sessions.recording import live

        live.close_writer_connection()
        # Consumers' database_sync_to_async calls run in asgiref's one thread-sensitive worker
        # thread, whose connection persists (CONN_MAX_AGE): on PostgreSQL it kept the test
        # database "accessed by other users", and pytest-django could not drop it.
        from asgiref.sync import SyncToAsync
        from django.db import connections

        SyncToAsync.single_thread_executor.submit(connections.close_all).result(timeout=30)
