"""GET /api/v1/audit/export: the audit trail as JSON lines, for auditors and admins."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.views import APIView

from portal import permissions
from portal.audit_export import iter_lines

JSONL = "application/jsonl"


def _since(raw: str) -> datetime:
    """An ISO date or datetime (no offset: UTC) that the database can compare, or a 400.

    Checked as UTC here because the database converts it: 0001-01-01T00:00+05:00 is before
    year 1 in UTC and raised OverflowError (a 500) inside the query.
    """
    try:
        since = datetime.fromisoformat(raw)
    except ValueError:
        raise ValidationError({"since": "Not an ISO date or datetime."}) from None
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    try:
        return since.astimezone(UTC)
    except OverflowError:
        raise ValidationError({"since": "Out of range: give a date between the years 1 and 9999 (UTC)."}) from None


class AuditExportView(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("since", str, description="ISO date or datetime: only events from then on")],
        responses={(200, JSONL): OpenApiResponse(description="one audit event per line, oldest first"), 403: None},
        summary="Export the audit trail as JSON lines (auditors and admins)",
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        if not (permissions.is_auditor(request.user) or permissions.is_admin(request.user)):
            raise PermissionDenied("Only auditors and admins may export the audit trail.")
        since: Any = None
        if raw := request.query_params.get("since"):
            since = _since(raw)
        response = StreamingHttpResponse(iter_lines(since=since), content_type=JSONL)
        response["Content-Disposition"] = 'attachment; filename="ephemera-audit.jsonl"'
        response["Cache-Control"] = "private, no-store"
        return response
