"""The provider's endpoints, from OIDC_ISSUER's discovery document.

Fetched on first use, not at start-up (the portal must start while the IdP is down), then kept
for an hour. The keys (jwks_uri) are not cached here: the backend fetches them at every login,
so a provider that rotates its signing key is followed at once.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import requests
from django.conf import settings

CACHE_SECONDS = 3600


class DiscoveryError(Exception):
    """The provider's discovery document could not be had or is not usable (the message says why)."""


@dataclass(frozen=True)
class Provider:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str
    jwks_uri: str
    signing_algs: tuple[str, ...]


_lock = threading.Lock()
_cached: tuple[str, float, Provider] | None = None

# Only asymmetric algorithms: an HS256 token would be checked with our client secret, which
# the provider shares; "none" is never accepted.
_ALLOWED_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")


def provider() -> Provider:
    global _cached
    issuer = settings.OIDC_ISSUER
    with _lock:
        if _cached is not None and _cached[0] == issuer and _cached[1] > time.monotonic():
            return _cached[2]
    found = _fetch(issuer)
    with _lock:
        _cached = (issuer, time.monotonic() + CACHE_SECONDS, found)
    return found


def forget() -> None:
    """Drop the cached document (tests; a provider that moved)."""
    global _cached
    with _lock:
        _cached = None


def _fetch(issuer: str) -> Provider:
    url = issuer + "/.well-known/openid-configuration"
    try:
        response = requests.get(url, timeout=settings.OIDC_TIMEOUT, allow_redirects=False)
        response.raise_for_status()
        doc = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise DiscoveryError(f"the provider's discovery document {url} could not be read ({type(exc).__name__})") from exc
    return parse(doc, issuer, url)


def parse(doc: object, issuer: str, url: str) -> Provider:
    """The provider in a discovery document, or DiscoveryError saying what is wrong with it."""
    if not isinstance(doc, dict):
        raise DiscoveryError(f"{url} is not a JSON object")
    # OpenID Connect Discovery 1.0, 4.3: the issuer in the document must be the one we asked.
    if str(doc.get("issuer", "")).rstrip("/") != issuer:
        raise DiscoveryError(f"{url} names issuer {doc.get('issuer')!r}, not OIDC_ISSUER {issuer!r}")
    # The endpoints use https like the issuer: a plain-http JWKS would let anyone on the way swap
    # the keys. (A plain-http issuer is only allowed on this machine, in demo/debug mode: config.py.)
    schemes = ("https://", "http://") if issuer.startswith("http://") else ("https://",)
    fields = {}
    for name in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"):
        value = doc.get(name)
        if not isinstance(value, str) or not value.startswith(schemes):
            raise DiscoveryError(f"{url} has no usable {name} (an {schemes[0]} URL)")
        fields[name] = value
    methods = doc.get("code_challenge_methods_supported")
    if isinstance(methods, list) and "S256" not in methods:
        raise DiscoveryError(f"{url}: the provider does not support PKCE with S256")
    algs = doc.get("id_token_signing_alg_values_supported") or ["RS256"]
    usable = tuple(a for a in algs if a in _ALLOWED_ALGS)
    if not usable:
        raise DiscoveryError(f"{url}: the provider signs ID tokens only with {algs}, none of {list(_ALLOWED_ALGS)}")
    # The issuer exactly as the provider writes it (some end it with "/"): ID tokens' `iss` must equal it.
    return Provider(issuer=str(doc["issuer"]), signing_algs=usable, **fields)
