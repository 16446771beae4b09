from django.apps import AppConfig


class DebugSessionsConfig(AppConfig):
    name = "sessions"
    # django.contrib.sessions owns the label "sessions".
    label = "debug_sessions"
    verbose_name = "Debug sessions"
