"""JSON shape of GET /api/v1/sessions: one running-sessions row (sessions.running.selectors)."""

from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from sessions.running.selectors import RunningRow


class PendingExtensionSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    minutes = serializers.IntegerField()
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()


class RunningSessionSerializer(serializers.Serializer):
    """A listed session: what it is, whose, how long it has left, who watches, what you may do."""

    id = serializers.UUIDField(source="session.pk")
    request_id = serializers.UUIDField(source="session.request_id")
    status = serializers.CharField(source="session.status")
    kind = serializers.CharField(source="session.request.kind")
    target = serializers.CharField(source="session.request.target_label", help_text="namespace/pod:container, or node/NAME")
    namespace = serializers.CharField(source="session.request.namespace")
    pod = serializers.CharField(source="session.request.pod")
    container = serializers.CharField(source="session.request.container", help_text="The target container.")
    node = serializers.CharField(source="session.request.node")
    debug_container = serializers.CharField(source="session.container_name")
    image = serializers.CharField(source="session.request.image")
    profile = serializers.CharField(source="session.request.profile")
    requester = serializers.CharField(source="session.request.requester.username")
    reason = serializers.CharField(source="session.request.reason")
    started_at = serializers.DateTimeField(source="session.started_at", allow_null=True)
    expires_at = serializers.DateTimeField(source="session.expires_at", allow_null=True)
    seconds_left = serializers.IntegerField(allow_null=True, help_text="Until the time limit; null unless running.")
    watchers = serializers.ListField(child=serializers.CharField(), help_text="Who is watching it live now.")
    pending_extension = PendingExtensionSerializer(allow_null=True)
    can_watch = serializers.BooleanField()
    can_end = serializers.BooleanField(help_text="End (your own) or revoke (with a reason): POST .../end.")
    can_decide_extension = serializers.BooleanField(help_text="Approve or deny its pending extension.")
    can_ask_extension = serializers.BooleanField(help_text="Ask for more time: POST .../extend.")
    page_url = serializers.SerializerMethodField()
    watch_url = serializers.SerializerMethodField()

    def get_page_url(self, row: RunningRow) -> str:
        return reverse("session_detail", kwargs={"session_id": row.session.pk})

    def get_watch_url(self, row: RunningRow) -> str | None:
        return reverse("session_watch", kwargs={"session_id": row.session.pk}) if row.can_watch else None
