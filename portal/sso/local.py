"""Password sign-in. With EPHEMERA_LOCAL_LOGIN=0 only superusers may use it (break-glass)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.backends import ModelBackend


def password_login_allowed(user: Any) -> bool:
    return bool(settings.EPHEMERA_LOCAL_LOGIN or user.is_superuser)


class LocalPasswordBackend(ModelBackend):
    def user_can_authenticate(self, user: Any) -> bool:
        return super().user_can_authenticate(user) and password_login_allowed(user)
