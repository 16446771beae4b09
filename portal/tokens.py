"""API bearer tokens: random, shown once, stored only as a SHA-256 digest."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from portal.models import ApiToken

TOKEN_PREFIX = "eph_"  # noqa: S105 (a label, not a secret)
_PREFIX_LEN = 12


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def create_token(user: Any, name: str = "", expires_at: datetime | None = None) -> str:
    """Create a token for `user` and return it; this is the only time it is ever visible."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():  # the token and its audit event (portal.role_audit) commit together
        ApiToken.objects.create(user=user, name=name[:100], prefix=raw[:_PREFIX_LEN], digest=_digest(raw),
                                expires_at=expires_at)
    return raw


def _live() -> Any:
    """Tokens that authenticate: not revoked, not expired."""
    from django.db.models import Q

    return ApiToken.objects.filter(revoked_at__isnull=True).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))


def token_login(raw: str) -> tuple[Any, int] | None:
    """(the active user owning this unrevoked token, the token's id), or None. Records when it was last used.

    The id lets a long-lived connection (a websocket) notice when this very token is revoked.
    """
    if not raw or len(raw) > 200:
        return None
    token = _live().select_related("user").filter(digest=_digest(raw)).first()
    if token is None or not token.user.is_active:
        return None
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    user_model = get_user_model()
    assert isinstance(token.user, user_model)
    return token.user, token.pk


def user_for_token(raw: str) -> Any | None:
    """The active user owning this unrevoked token, or None. Records when it was last used."""
    login = token_login(raw)
    return login[0] if login is not None else None


def token_problem(token_id: int) -> str:
    """Why the token with this id no longer authenticates anyone ("" while it does)."""
    token = ApiToken.objects.select_related("user").filter(pk=token_id).first()
    if token is None or token.revoked_at is not None:
        return "The API token this connection used was revoked."
    if token.expires_at is not None and token.expires_at <= timezone.now():
        return "The API token this connection used has expired."
    if not token.user.is_active:
        return "Your account was deactivated."
    return ""


def revoke_token(token_id: int) -> None:
    """Revoke the token (idempotent). A save, not an update(): the signals audit it."""
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().filter(pk=token_id, revoked_at__isnull=True).first()
        if token is None:
            return
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
