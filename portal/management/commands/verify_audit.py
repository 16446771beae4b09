"""Check the audit trail's hash chain end to end; exit non-zero if anything was changed."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from portal.audit import AuditChainError, verify_chain


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            count = verify_chain()
        except AuditChainError as exc:
            raise CommandError(f"audit trail broken: {exc}") from exc
        self.stdout.write(f"audit trail intact: {count} events")
