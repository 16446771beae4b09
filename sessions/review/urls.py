"""Review pages (mounted under /sessions/ by sessions/urls.py)."""

from django.urls import path

from sessions.review import views

urlpatterns = [
    path("history/", views.session_history, name="session_history"),
    path("<uuid:session_id>/review", views.session_review, name="session_review"),
    path("<uuid:session_id>/watch", views.session_watch, name="session_watch"),
]
