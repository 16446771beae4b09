from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Ephemera core"

    def ready(self) -> None:
        # Role changes made anywhere (admin, manage.py, ORM) become audit events.
        from portal import role_audit

        role_audit.connect()
