"""The home page: my own requests (with their sessions) and, for approvers, what waits for them."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from approvals.choices import RequestStatus
from approvals.models import DebugRequest
from portal import permissions


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    mine = DebugRequest.objects.filter(requester=request.user).select_related("session").order_by("-created_at")[:50]
    is_approver = permissions.is_approver(request.user) or permissions.is_admin(request.user)
    pending = []
    if is_approver:
        pending = list(
            DebugRequest.objects.filter(status=RequestStatus.PENDING).select_related("requester").order_by("created_at")[:50]
        )
    return render(request, "portal/home.html", {"mine": mine, "is_approver": is_approver, "pending": pending})
