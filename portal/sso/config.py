"""Start-up checks of the single sign-on settings: a bad value stops the portal with a clear message."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from portal.env import SettingError


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check(*, issuer: str, client_id: str, client_secret: str, scopes: str, groups_claim: str,
          local_login: bool, insecure_ok: bool) -> None:
    if not issuer:
        if not local_login:
            raise SettingError("EPHEMERA_LOCAL_LOGIN=0 needs OIDC_ISSUER: without single sign-on only superusers could sign in")
        return
    parts = urlsplit(issuer)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise SettingError(f"OIDC_ISSUER={issuer!r} must be an https:// URL")
    # Plain http only to a provider on this machine (RFC 8252's loopback exception), and only in
    # demo/debug mode: tokens and codes would otherwise cross the network readable.
    if parts.scheme == "http" and not (insecure_ok and _loopback(parts.hostname)):
        raise SettingError(f"OIDC_ISSUER={issuer!r} must be an https:// URL (http only to localhost in demo/debug mode)")
    if parts.query or parts.fragment:
        raise SettingError("OIDC_ISSUER must not have a query or fragment")
    if not client_id:
        raise SettingError("OIDC_ISSUER needs OIDC_CLIENT_ID")
    if not client_secret:
        raise SettingError("OIDC_ISSUER needs OIDC_CLIENT_SECRET (or OIDC_CLIENT_SECRET_FILE)")
    if "openid" not in scopes.split():
        raise SettingError(f"OIDC_SCOPES={scopes!r} must include openid")
    if not groups_claim:
        raise SettingError("OIDC_GROUPS_CLAIM must name the claim that lists a user's groups (default: groups)")
