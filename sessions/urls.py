"""Pages of this app."""

from django.urls import include, path

from sessions import views

urlpatterns = [
    path("oversight/", views.oversight_page, name="oversight"),
    path("running/", include("sessions.running.urls")),
    path("", include("sessions.review.urls")),
    path("<uuid:session_id>/", views.session_detail, name="session_detail"),
    path("<uuid:session_id>/end", views.session_end, name="session_end"),
    path("<uuid:session_id>/extend", views.session_extend, name="session_extend"),
    path("extensions/<uuid:extension_id>/decide", views.extension_decide, name="extension_decide"),
    path("extensions/<uuid:extension_id>/approval-key", views.extension_key_options, name="extension_key_options"),
    path("<uuid:session_id>/status.json", views.session_status, name="session_status"),
]
