"""Websocket routes of this app."""

from django.urls import path

from sessions.consumers import TerminalConsumer
from sessions.review.consumers import WatchConsumer

websocket_urlpatterns = [
    path("ws/sessions/<uuid:session_id>/terminal", TerminalConsumer.as_asgi()),
    path("ws/sessions/<uuid:session_id>/watch", WatchConsumer.as_asgi()),
]
