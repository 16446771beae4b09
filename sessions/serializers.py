"""JSON shapes of the sessions API (bodies only, for the OpenAPI document; rules live in services)."""

from __future__ import annotations

from rest_framework import serializers


class EndSerializer(serializers.Serializer):
    reason = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="Why; required when you end someone else's session."
    )
