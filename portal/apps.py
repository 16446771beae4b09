from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Ephemera core"

    def ready(self) -> None:
        # Role changes made anywhere (admin, manage.py, ORM) become audit events.
        # ...and close the open websockets they, or a logout, no longer allow.
        from portal import access_events, auth_audit, role_audit  # noqa: F401  (their signal receivers)

        role_audit.connect()
