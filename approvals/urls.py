"""Pages of this app (included at "" by portal/urls.py), the home page, and the cluster lookups of the form."""

from django.urls import path

from approvals import views
from portal import views as portal_views

urlpatterns = [
    path("", portal_views.home, name="home"),
    path("requests/new", views.request_new, name="request_new"),
    path("requests/<uuid:request_id>/", views.request_detail, name="request_detail"),
    path("requests/<uuid:request_id>/decide", views.request_decide, name="request_decide"),
    path("requests/<uuid:request_id>/cancel", views.request_cancel, name="request_cancel"),
    path("requests/<uuid:request_id>/approval-key", views.approval_key_options, name="approval_key_options"),
    path("approvals/", views.approvals_queue, name="approvals"),
    path("approvals/pending", views.approvals_pending_fragment, name="approvals_pending"),
    path("cluster/namespaces", views.cluster_namespaces, name="cluster_namespaces"),
    path("cluster/namespaces/<str:namespace>/pods", views.cluster_pods, name="cluster_pods"),
    path("cluster/namespaces/<str:namespace>/pods/<str:pod>/containers", views.cluster_containers, name="cluster_containers"),
]
