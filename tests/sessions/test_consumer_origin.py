"""Which Origins the websocket stack accepts: exactly the portal's own (scheme, host, port),
as Django's CSRF check decides, plus exact entries listed in settings.

The handshake through the routed ASGI app is covered here for the cross-port attack and in
test_consumer_auth for the rest.
"""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client

from portal.ws_auth import origin_allowed

NO_SUCH_SESSION = "6f1c2a44-0000-4000-8000-00000000abcd"


def _scope(host: str | None, *, scheme: str = "ws", **headers: str) -> dict[str, Any]:
    raw = [(b"host", host.encode())] if host is not None else []
    raw += [(name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()]
    return {"type": "websocket", "path": "/ws/approvals", "scheme": scheme, "headers": raw}


@pytest.fixture
def hosts(settings: Any) -> Any:
    settings.ALLOWED_HOSTS = ["localhost", "127.0.0.1", "portal.example.com", ".b.example.com"]
    settings.CSRF_TRUSTED_ORIGINS = []
    settings.EPHEMERA_WS_ALLOWED_ORIGINS = []
    settings.SECURE_PROXY_SSL_HEADER = None
    return settings


@pytest.mark.parametrize(
    ("host", "scheme", "origin"),
    [
        ("localhost", "ws", "http://localhost"),
        ("localhost:8000", "ws", "http://localhost:8000"),
        ("127.0.0.1:8443", "wss", "https://127.0.0.1:8443"),
        ("portal.example.com", "wss", "https://portal.example.com"),
        ("a.b.example.com", "wss", "https://a.b.example.com"),
    ],
)
def test_it_accepts_the_origin_the_handshake_was_sent_to(hosts: Any, host: str, scheme: str, origin: str) -> None:
    assert origin_allowed(origin, _scope(host, scheme=scheme))


@pytest.mark.parametrize(
    ("host", "scheme", "origin"),
    [
        # The attack: another port on the same host (another program, another user's page).
        ("127.0.0.1:18100", "ws", "http://127.0.0.1:18101"),
        ("127.0.0.1:18100", "ws", "http://127.0.0.1"),
        ("localhost", "ws", "http://localhost:8000"),
        # Another scheme on the same host and port.
        ("127.0.0.1:18100", "ws", "https://127.0.0.1:18100"),
        ("portal.example.com", "wss", "http://portal.example.com"),
        ("portal.example.com", "ws", "https://portal.example.com"),
        # Another allowed host is still another origin.
        ("127.0.0.1:18100", "ws", "http://localhost:18100"),
        ("portal.example.com", "wss", "https://a.b.example.com"),
        # A Host we don't serve (DNS rebinding) is never "our own".
        ("evil.example", "ws", "http://evil.example"),
        ("localhost.evil.example", "ws", "http://localhost.evil.example"),
        # No Host header at all: nothing to be the same origin as.
        (None, "ws", "http://localhost"),
    ],
)
def test_it_refuses_other_ports_schemes_and_hosts(hosts: Any, host: str | None, scheme: str, origin: str) -> None:
    assert not origin_allowed(origin, _scope(host, scheme=scheme))


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "http://localhost.evil.example",
        "https://portal.example.com.evil.example",
        "null",
        "file://localhost",
        "chrome-extension://abcdef",
        "",
        "https://user@evil.example",
        "https://user@portal.example.com",
    ],
)
def test_it_refuses_foreign_origins(hosts: Any, origin: str) -> None:
    assert not origin_allowed(origin, _scope("portal.example.com", scheme="wss"))


def test_it_takes_the_scheme_from_a_tls_proxy_only_when_configured(hosts: Any) -> None:
    behind_proxy = _scope("portal.example.com", scheme="ws", x_forwarded_proto="https")
    # Not configured: X-Forwarded-Proto is just something the client sent.
    assert origin_allowed("http://portal.example.com", behind_proxy)
    assert not origin_allowed("https://portal.example.com", behind_proxy)
    hosts.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert origin_allowed("https://portal.example.com", behind_proxy)
    assert not origin_allowed("http://portal.example.com", behind_proxy)
    # The proxy said plain http: then that is the origin.
    plain = _scope("portal.example.com", scheme="ws", x_forwarded_proto="http")
    assert origin_allowed("http://portal.example.com", plain)
    assert not origin_allowed("https://portal.example.com", plain)


def test_it_accepts_listed_origins_exactly(hosts: Any) -> None:
    hosts.EPHEMERA_WS_ALLOWED_ORIGINS = ["https://ops.example.net"]
    hosts.CSRF_TRUSTED_ORIGINS = ["https://csrf.example.net:8443", "https://*.wild.example.net"]
    scope = _scope("portal.example.com", scheme="wss")
    assert origin_allowed("https://ops.example.net", scope)
    assert origin_allowed("https://csrf.example.net:8443", scope)
    assert not origin_allowed("https://ops.example.net.evil", scope)
    assert not origin_allowed("https://ops.example.net:8443", scope)
    assert not origin_allowed("http://ops.example.net", scope)
    assert not origin_allowed("https://csrf.example.net", scope)
    # Only exact entries: a CSRF wildcard doesn't open the websockets to every subdomain.
    assert not origin_allowed("https://a.wild.example.net", scope)


# --- the attack, through the routed ASGI app -------------------------------------------------


def _cookie_for(user: User) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def _handshake(path: str, *, host: bytes, origin: bytes, cookie: bytes) -> tuple[bool, Any]:
    from portal.asgi import application

    headers = [(b"host", host), (b"origin", origin), (b"cookie", cookie)]
    comm = WebsocketCommunicator(application, path, headers=headers)
    try:
        return await comm.connect(timeout=5)
    finally:
        await comm.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "path", [f"/ws/sessions/{NO_SUCH_SESSION}/terminal", f"/ws/sessions/{NO_SUCH_SESSION}/watch", "/ws/approvals"]
)
@pytest.mark.parametrize(
    "origin",
    [b"http://127.0.0.1:18101", b"https://127.0.0.1:18100", b"http://127.0.0.1", b"http://localhost:18100"],
)
async def test_a_page_on_another_port_or_scheme_cannot_use_the_cookie(hosts: Any, path: str, origin: bytes) -> None:
    alice = await sync_to_async(User.objects.create_user)("alice", "alice@example.com", "alice-demo-pass")
    cookie = await sync_to_async(_cookie_for)(alice)
    connected, code = await _handshake(path, host=b"127.0.0.1:18100", origin=origin, cookie=cookie)
    assert not connected and code == 1000  # refused at the handshake: HTTP 403, the consumer never ran


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", [f"/ws/sessions/{NO_SUCH_SESSION}/terminal", "/ws/approvals"])
async def test_the_portals_own_page_still_connects(hosts: Any, path: str) -> None:
    alice = await sync_to_async(User.objects.create_user)("alice", "alice@example.com", "alice-demo-pass")
    cookie = await sync_to_async(_cookie_for)(alice)
    connected, _ = await _handshake(path, host=b"127.0.0.1:18100", origin=b"http://127.0.0.1:18100", cookie=cookie)
    assert connected  # past the Origin check (the consumer then closes: no such session / not an approver)
