"""JSON API routes (/api/). Authentication: Bearer token or the browser session (with CSRF)."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from approvals import api as requests_api
from portal.api_docs import ApiDocsView
from portal.audit_api import AuditExportView
from sessions import api as sessions_api
from sessions.files import api as files_api
from sessions.files import views as files_views
from sessions.recording import api as recording_api

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", ApiDocsView.as_view(url_name="api-schema"), name="api-docs"),
    path("v1/audit/export", AuditExportView.as_view(), name="api-audit-export"),
    path("v1/requests", requests_api.RequestListView.as_view(), name="api-requests"),
    path("v1/requests/preview", requests_api.RequestPreviewView.as_view(), name="api-request-preview"),
    path("v1/requests/<uuid:pk>", requests_api.RequestDetailView.as_view(), name="api-request"),
    path("v1/requests/<uuid:pk>/approve", requests_api.RequestApproveView.as_view(), name="api-request-approve"),
    path("v1/requests/<uuid:pk>/deny", requests_api.RequestDenyView.as_view(), name="api-request-deny"),
    path("v1/requests/<uuid:pk>/cancel", requests_api.RequestCancelView.as_view(), name="api-request-cancel"),
    path("v1/sessions", sessions_api.SessionListView.as_view(), name="api-sessions"),
    path("v1/sessions/<uuid:pk>", sessions_api.SessionDetailView.as_view(), name="api-session"),
    path("v1/sessions/<uuid:pk>/end", sessions_api.SessionEndView.as_view(), name="api-session-end"),
    path("v1/sessions/<uuid:pk>/extend", sessions_api.SessionExtendView.as_view(), name="api-session-extend"),
    path("v1/extensions/<uuid:pk>/approve", sessions_api.ExtensionApproveView.as_view(), name="api-extension-approve"),
    path("v1/extensions/<uuid:pk>/deny", sessions_api.ExtensionDenyView.as_view(), name="api-extension-deny"),
    path("v1/sessions/<uuid:pk>/files", files_api.SessionFilesView.as_view(), name="api-session-files"),
    path("v1/transfers/<int:pk>/content", files_views.TransferContentView.as_view(), name="api-transfer-content"),
    path("v1/sessions/<uuid:pk>/recording.cast", recording_api.RecordingCastView.as_view(), name="api-session-recording"),
]
