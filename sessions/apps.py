from django.apps import AppConfig


class DebugSessionsConfig(AppConfig):
    name = "sessions"
    # django.contrib.sessions owns the label "sessions".
    label = "debug_sessions"
    verbose_name = "Debug sessions"

    def ready(self) -> None:
        # The session recorder plugs into the terminal bridge's hooks.
        from sessions.recording import live

        live.install()
