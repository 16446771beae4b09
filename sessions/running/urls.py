"""The running-sessions page (mounted at /sessions/running/ by sessions/urls.py)."""

from django.urls import path

from sessions.running import views

urlpatterns = [
    path("", views.running_page, name="sessions_running"),
    path("list", views.running_list, name="sessions_running_list"),
]
