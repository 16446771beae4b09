"""Create an API bearer token for a user and print it (the only time it is shown)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from portal.tokens import create_token


class Command(BaseCommand):
    help = "Create an API token for USER and print it once; only its SHA-256 is stored."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("user", help="username")
        parser.add_argument("--name", default="", help="a label to tell tokens apart")

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        try:
            user = user_model.objects.get(username=options["user"])
        except user_model.DoesNotExist:
            raise CommandError(f"no user named {options['user']!r}") from None
        if not user.is_active:
            raise CommandError(f"user {options['user']!r} is inactive")
        self.stdout.write(create_token(user, name=options["name"]))
