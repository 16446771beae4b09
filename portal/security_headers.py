"""Content-Security-Policy on every HTML page the portal serves, the admin's included.

The pages carry no inline script, event handler or style: scripts and stylesheets come from
the bundle (frontend/, served from 'self'), data for scripts from `json_script` blocks
(`type="application/json"`, never executed) and data- attributes. So an injected `<script>`,
`onerror=`, `style=` or `<style>` does nothing, and pages can't be framed, re-based or made
to post elsewhere.

One exception, for script-made styles only: xterm.js writes its layout and theme into
`<style>` elements it creates at run time, which 'self' does not cover. Each response gets a
fresh nonce in style-src, on the page's stylesheet link for the bundle to read
(`frontend/src/shared/style_nonce.ts` stamps it on the `<style>` elements scripts create).
No template uses it: markup can't carry a nonce it doesn't know, and style attributes are
never allowed (a nonce doesn't apply to them).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse

HEADER = "Content-Security-Policy"


def policy(request: HttpRequest, *, nonce: str) -> str:
    # connect-src 'self' covers ws(s): of the same origin in CSP Level 3 browsers; older ones
    # (Safari before 15.4) need the websocket origin spelled out. get_host() is validated
    # against ALLOWED_HOSTS, and is_secure() follows SECURE_PROXY_SSL_HEADER behind the proxy.
    try:
        ws_origin = f" {'wss' if request.is_secure() else 'ws'}://{request.get_host()}"
    except DisallowedHost:  # the 400 page for a foreign Host: no websocket there anyway
        ws_origin = ""
    directives = [
        "default-src 'self'",
        # asciinema-player (the replay) decodes in WebAssembly. 'wasm-unsafe-eval' lets scripts
        # that already run compile wasm; it runs no string as JavaScript and no injected script.
        "script-src 'self' 'wasm-unsafe-eval'",
        f"style-src 'self' 'nonce-{nonce}'",
        "img-src 'self' data:",
        f"connect-src 'self'{ws_origin}",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "object-src 'none'",
    ]
    return "; ".join(directives)


class ContentSecurityPolicyMiddleware:
    """Adds the policy to HTML responses that don't set one of their own."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Unguessable and new on every response: base.html puts it on the stylesheet link.
        nonce = secrets.token_urlsafe(18)
        request.csp_nonce = nonce  # type: ignore[attr-defined]
        response = self.get_response(request)
        if HEADER not in response and response.get("Content-Type", "").startswith("text/html"):
            response[HEADER] = policy(request, nonce=nonce)
        return response
