"""Which Origins the websocket stack accepts (the full handshake is covered in test_consumer_auth)."""

from __future__ import annotations

import pytest

from portal.ws_auth import origin_allowed


@pytest.mark.parametrize(
    "origin",
    ["http://localhost", "http://localhost:8000", "https://127.0.0.1:8443", "https://portal.example.com", "https://a.b.example.com"],
)
def test_it_accepts_our_hosts(settings, origin):
    settings.ALLOWED_HOSTS = ["localhost", "127.0.0.1", "portal.example.com", ".b.example.com"]
    assert origin_allowed(origin)


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
    ],
)
def test_it_refuses_foreign_origins(settings, origin):
    settings.ALLOWED_HOSTS = ["localhost", "127.0.0.1", "portal.example.com"]
    assert not origin_allowed(origin)


def test_it_accepts_an_extra_listed_origin_exactly(settings):
    settings.ALLOWED_HOSTS = ["localhost"]
    settings.EPHEMERA_WS_ALLOWED_ORIGINS = ["https://ops.example.net"]
    assert origin_allowed("https://ops.example.net")
    assert not origin_allowed("https://ops.example.net.evil")
