"""The tests' identity providers: node-oidc-provider (real, tests/oidc/provider.mjs) and a rogue one.

`RealIdP` runs the real provider as a process; `login()` drives a whole code flow the way a
browser would: the portal's redirect, the provider's sign-in form, the redirect back to the
portal's callback (Django's test client on one side, an HTTP session on the other).

`RogueIdP` is a small HTTP server speaking the same wire format (discovery, JWKS, token,
userinfo) that hands out ID tokens that are wrong on purpose: a foreign signature, another
audience, no nonce... It also hands out a correct one, so each refusal test can show it would
have signed in had the token been right.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

REPO = Path(__file__).resolve().parents[2]
PROVIDER = REPO / "tests" / "oidc" / "provider.mjs"
CLIENT_ID = "ephemera"
CLIENT_SECRET = "test-client-secret-" + "x" * 16  # noqa: S105 (a test provider's client)
IDP_PASSWORD = "idp-pass"  # noqa: S105 (the test accounts' password)


class RealIdP:
    def __init__(self, workdir: Path, redirect_uris: list[str]) -> None:
        if not (REPO / "tests" / "oidc" / "node_modules" / "oidc-provider").exists():
            raise RuntimeError("tests/oidc/node_modules is missing: run `make deps` (npm ci in tests/oidc)")
        self.accounts_file = workdir / "accounts.json"
        self.redirect_uris = redirect_uris
        self.accounts: dict[str, dict[str, Any]] = {}
        self.save_accounts()
        self.port = 0
        self.proc: subprocess.Popen[str] | None = None
        self.issuer = ""
        self.kid = ""

    def save_accounts(self) -> None:
        self.accounts_file.write_text(json.dumps(self.accounts))

    def add(self, login: str, *, groups: list[str], password: str = IDP_PASSWORD, email: str | None = None,
            name: str | None = None, disabled: bool = False) -> None:
        self.accounts[login] = {"password": password, "email": email or f"{login}@idp.example", "name": name or login.title(),
                                "groups": groups, "disabled": disabled}
        self.save_accounts()

    def start(self) -> RealIdP:
        args = ["node", str(PROVIDER), "--port", str(self.port), "--accounts", str(self.accounts_file),
                "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET]
        for uri in self.redirect_uris:
            args += ["--redirect-uri", uri]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the OpenID provider did not start (exit {self.proc.wait(5)})")
        started = json.loads(line)
        self.issuer, self.kid = started["issuer"], started["kid"]
        self.port = int(urlsplit(self.issuer).port or 0)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        """Same issuer (same port), a new signing key: how a provider rotates its keys."""
        self.stop()
        for _ in range(50):
            try:
                self.start()
                return
            except (RuntimeError, json.JSONDecodeError):
                time.sleep(0.1)  # the port may take a moment to be free again
        raise RuntimeError("the OpenID provider did not restart")


@dataclass
class Browser:
    """The provider's side of one browser: its cookies (the provider's own sign-in session)."""

    http: requests.Session = field(default_factory=requests.Session)


def sign_in_at_idp(browser: Browser, authorize_url: str, login: str, password: str) -> str:
    """Follow the provider from its authorization URL through its sign-in form (when it shows
    one) to the redirect back to the portal; returns that redirect's URL."""
    url = authorize_url
    for _ in range(20):
        resp = browser.http.get(url, allow_redirects=False, timeout=10)
        if resp.status_code in (302, 303):
            location = urljoin(url, resp.headers["location"])
            if not location.startswith(url.split("/", 3)[0] + "//" + url.split("/", 3)[2]):
                return location  # left the provider: back to the portal
            url = location
            continue
        if resp.status_code == 200 and 'name="login"' in resp.text:
            action = re.search(r'<form method="post" action="([^"]+)"', resp.text)
            assert action, resp.text[:300]
            posted = browser.http.post(urljoin(url, action.group(1)), data={"login": login, "password": password},
                                       allow_redirects=False, timeout=10)
            assert posted.status_code in (302, 303), posted.text[:300]
            location = urljoin(url, posted.headers["location"])
            if "failed=1" in location:
                return location  # the provider refused the credentials
            url = location
            continue
        raise AssertionError(f"unexpected answer from the provider: {resp.status_code} {resp.text[:300]}")
    raise AssertionError("too many redirects at the provider")


def portal_login(client: Any, browser: Browser, login: str, password: str = IDP_PASSWORD, *,
                 start: str = "/oidc/authenticate/") -> tuple[Any, str]:
    """A whole code flow: (the portal's answer to the callback, the callback URL it was given)."""
    resp = client.get(start)
    assert resp.status_code == 302, (resp.status_code, resp.content[:300])
    back = sign_in_at_idp(browser, resp["Location"], login, password)
    parts = urlsplit(back)
    if parts.path != "/oidc/callback/":
        return None, back
    return client.get(f"{parts.path}?{parts.query}"), back


# --- the rogue provider -----------------------------------------------------------------


def _b64(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class RogueIdP:
    """Serves discovery, JWKS, an authorization endpoint that answers at once, a token endpoint
    whose ID token is shaped by `mode`, and userinfo. One published key; a second, unpublished,
    for foreign signatures."""

    MODES = ("good", "foreign_signature", "wrong_audience", "no_nonce", "wrong_nonce", "wrong_issuer",
             "expired", "alg_none", "hs256", "several_audiences", "old_auth_time", "no_auth_time")

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = secrets.token_hex(6)
        self.mode = "good"
        self.sub = "rogue-user-1"  # who the provider says signed in
        self.issuer_suffix = ""  # "/": the provider names itself with a trailing slash (Auth0 does)
        self.asked: list[dict[str, str]] = []  # the authorization requests it got
        self.groups: list[str] = ["approvers"]
        self.codes: dict[str, dict[str, str]] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> RogueIdP:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def id_token(self, nonce: str) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {"iss": self.issuer + self.issuer_suffix, "sub": self.sub, "aud": CLIENT_ID, "iat": now,
                                  "exp": now + 300, "nonce": nonce, "auth_time": now}
        key: Any = self.key
        alg = "RS256"
        mode = self.mode
        if mode == "wrong_audience":
            claims["aud"] = "someone-else"
        elif mode == "no_nonce":
            del claims["nonce"]
        elif mode == "wrong_nonce":
            claims["nonce"] = "not-" + nonce
        elif mode == "wrong_issuer":
            claims["iss"] = "https://evil.example"
        elif mode == "expired":
            claims["iat"], claims["exp"] = now - 7200, now - 3600
        elif mode == "several_audiences":
            claims["aud"] = [CLIENT_ID, "someone-else"]
            claims["azp"] = "someone-else"
        elif mode == "old_auth_time":
            claims["auth_time"] = now - 3600
        elif mode == "no_auth_time":
            del claims["auth_time"]
        elif mode == "foreign_signature":
            key = self.other_key
        if mode == "alg_none":
            return jwt.encode(claims, None, algorithm="none", headers={"kid": self.kid})
        if mode == "hs256":
            return jwt.encode(claims, CLIENT_SECRET, algorithm="HS256", headers={"kid": self.kid})
        return jwt.encode(claims, key, algorithm=alg, headers={"kid": self.kid})

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _json(self, body: Any, status: int = 200) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                parts = urlsplit(self.path)
                if parts.path == "/.well-known/openid-configuration":
                    return self._json({
                        "issuer": idp.issuer + idp.issuer_suffix, "authorization_endpoint": idp.issuer + "/auth",
                        "token_endpoint": idp.issuer + "/token", "userinfo_endpoint": idp.issuer + "/me",
                        "jwks_uri": idp.issuer + "/jwks", "id_token_signing_alg_values_supported": ["RS256"],
                        "code_challenge_methods_supported": ["S256"],
                    })
                if parts.path == "/jwks":
                    pub = idp.key.public_key().public_numbers()
                    return self._json({"keys": [{"kty": "RSA", "kid": idp.kid, "use": "sig", "alg": "RS256",
                                                 "n": _b64(pub.n), "e": _b64(pub.e)}]})
                if parts.path == "/auth":
                    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
                    idp.asked.append(q)
                    code = secrets.token_urlsafe(16)
                    idp.codes[code] = q
                    self.send_response(302)
                    self.send_header("location", f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}")
                    self.end_headers()
                    return None
                if parts.path == "/me":
                    return self._json({"sub": idp.sub, "email": f"{idp.sub}@idp.example", "preferred_username": idp.sub,
                                       "groups": idp.groups})
                return self._json({"error": "not_found"}, 404)

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                asked = idp.codes.pop(form.get("code", ""), None)
                if asked is None:
                    return self._json({"error": "invalid_grant"}, 400)
                return self._json({"access_token": "rogue-access", "token_type": "Bearer", "expires_in": 300,
                                   "id_token": idp.id_token(asked.get("nonce", ""))})

        return Handler
