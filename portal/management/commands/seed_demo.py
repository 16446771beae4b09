"""Create the demo users and groups (demo mode only). Safe to run again."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

# name -> (groups, superuser). "approvers"/"auditors" stand for the configured role groups;
# payments-oncall is a group the demo policy (portal/demo_policy.yaml) names as approvers.
DEMO_USERS: dict[str, tuple[tuple[str, ...], bool]] = {
    "alice": ((), False),
    "bob": (("approvers", "payments-oncall"), False),
    "carol": (("approvers",), False),
    "dave": (("auditors",), False),
    "admin": ((), True),
}


def demo_password(name: str) -> str:
    return f"{name}-demo-pass"


class Command(BaseCommand):
    help = "Create the demo users alice, bob, carol, dave and admin (password: <name>-demo-pass). Demo mode only."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEMO:
            raise CommandError("seed_demo only runs in demo mode (EPHEMERA_DEMO=1): it creates users with well-known passwords.")
        groups = {
            "approvers": settings.EPHEMERA_APPROVER_GROUP,
            "auditors": settings.EPHEMERA_AUDITOR_GROUP,
            "payments-oncall": "payments-oncall",
        }
        user_model = get_user_model()
        with transaction.atomic():
            for role in groups.values():
                Group.objects.get_or_create(name=role)
            for name, (member_of, superuser) in DEMO_USERS.items():
                user, created = user_model.objects.get_or_create(username=name, defaults={"email": f"{name}@example.com"})
                user.is_active = True
                user.is_staff = superuser
                user.is_superuser = superuser
                user.set_password(demo_password(name))
                user.save()
                for group in member_of:
                    user.groups.add(Group.objects.get(name=groups[group]))
                self.stdout.write(f"{'created' if created else 'updated'} {name}")
