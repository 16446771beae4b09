"""Admin: each delivery (event, channel, attempts, last error, next try), and a retry action.

Read-only otherwise: only the worker moves a row (portal.notifications.delivery).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from portal.notifications import delivery
from portal.notifications.models import Notification, NotificationPreference


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("created_at", "event", "channel", "recipient", "status", "attempts", "last_error", "next_attempt_at",
                    "delivered_at")
    list_filter = ("status", "channel", "event")
    search_fields = ("delivery_id", "recipient", "request__id", "session__id", "event")
    readonly_fields = [f.name for f in Notification._meta.fields]
    actions = ["retry_now"]
    list_select_related = False

    @admin.action(description="Retry now (not delivered ones)", permissions=["retry"])
    def retry_now(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        count = delivery.retry(queryset)
        self.message_user(request, f"{count} notification(s) will be sent on the worker's next pass.", messages.SUCCESS)

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(admin.ModelAdmin):
    list_display = ("user", "email")
    list_filter = ("email",)
