"""JSON shapes of the sessions API (bodies only, for the OpenAPI document; rules live in services)."""

from __future__ import annotations

from rest_framework import serializers

from sessions.models import SessionExtension


class EndSerializer(serializers.Serializer):
    reason = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="Why; required when you end someone else's session."
    )


class ExtendSerializer(serializers.Serializer):
    minutes = serializers.IntegerField(help_text="Extra minutes (the total of a session's extensions is capped).")
    reason = serializers.CharField(help_text="Why; approvers see it.")


class ExtensionSerializer(serializers.ModelSerializer):
    requester = serializers.CharField(source="requester.username", read_only=True)
    decided_by = serializers.CharField(source="decided_by.username", read_only=True, default=None)
    session_id = serializers.UUIDField(read_only=True)

    class Meta:
        model = SessionExtension
        fields = ["id", "session_id", "status", "minutes", "reason", "requester", "created_at", "decided_by",
                  "decided_at", "comment"]
        read_only_fields = fields
