"""/api/docs/: the API reference, Swagger UI on the OpenAPI schema at /api/schema/.

Swagger UI comes from drf-spectacular-sidecar's static files (no CDN), and its start-up script is
a file too (drf-spectacular's "split" view), so no inline script runs. Swagger UI sets style
attributes as it renders, which the portal's policy forbids everywhere else: this page alone
allows inline styles. It shows only the schema, which is the same for everyone.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularSwaggerSplitView
from rest_framework.request import Request

from portal.security_headers import HEADER

DOCS_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "object-src 'none'",
])


class ApiDocsView(SpectacularSwaggerSplitView):
    title = "Ephemera API"

    @extend_schema(exclude=True)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:
        response: HttpResponse = super().get(request, *args, **kwargs)
        response[HEADER] = DOCS_POLICY
        return response
