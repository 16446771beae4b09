from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest


def ephemera(request: HttpRequest) -> dict[str, Any]:
    return {
        "EPHEMERA_DEMO": settings.DEMO,
        "EPHEMERA_CLUSTER_NAME": settings.EPHEMERA_CLUSTER_NAME,
        "SSO_ENABLED": bool(settings.OIDC_ISSUER),
        "OIDC_PROVIDER_NAME": settings.OIDC_PROVIDER_NAME,
        "LOCAL_LOGIN": settings.EPHEMERA_LOCAL_LOGIN,
    }
