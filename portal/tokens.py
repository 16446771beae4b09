"""API bearer tokens: random, shown once, stored only as a SHA-256 digest."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from portal.models import ApiToken

TOKEN_PREFIX = "eph_"  # noqa: S105 (a label, not a secret)
_PREFIX_LEN = 12


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def create_token(user: Any, name: str = "") -> str:
    """Create a token for `user` and return it; this is the only time it is ever visible."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():  # the token and its audit event (portal.role_audit) commit together
        ApiToken.objects.create(user=user, name=name[:100], prefix=raw[:_PREFIX_LEN], digest=_digest(raw))
    return raw


def user_for_token(raw: str) -> Any | None:
    """The active user owning this unrevoked token, or None. Records when it was last used."""
    if not raw or len(raw) > 200:
        return None
    token = ApiToken.objects.select_related("user").filter(digest=_digest(raw), revoked_at__isnull=True).first()
    if token is None or not token.user.is_active:
        return None
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    user_model = get_user_model()
    assert isinstance(token.user, user_model)
    return token.user


def revoke_token(token_id: int) -> None:
    """Revoke the token (idempotent). A save, not an update(): the signals audit it."""
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().filter(pk=token_id, revoked_at__isnull=True).first()
        if token is None:
            return
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
