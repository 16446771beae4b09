"""Admin: requests and decisions are read-only here; state changes go through the services."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from approvals.models import DebugRequest, Decision


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(DebugRequest)
class DebugRequestAdmin(_ReadOnly):
    list_display = ("created_at", "requester", "namespace", "pod", "container", "profile", "status")
    list_filter = ("status", "profile", "namespace")


@admin.register(Decision)
class DecisionAdmin(_ReadOnly):
    list_display = ("created_at", "request", "approver", "verdict")
