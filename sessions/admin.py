"""Admin: sessions are read-only here; end one through the portal so its shell is stopped too."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from sessions.models import DebugSession


@admin.register(DebugSession)
class DebugSessionAdmin(admin.ModelAdmin):
    list_display = ("created_at", "namespace", "pod", "container_name", "status", "expires_at")
    list_filter = ("status",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
