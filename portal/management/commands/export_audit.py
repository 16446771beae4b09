"""Export the audit trail as JSON lines (stdout or --output FILE), after checking the chain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from portal.audit import AuditChainError, verify_chain
from portal.audit_export import iter_lines


class Command(BaseCommand):
    help = "Export the audit trail as JSON lines (one event per line, oldest first)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", "-o", help="file to write (default: stdout)")
        parser.add_argument("--since", help="only events from this ISO date or datetime on")

    def handle(self, *args: Any, **options: Any) -> None:
        since = None
        if options["since"]:
            try:
                since = datetime.fromisoformat(options["since"])
            except ValueError:
                raise CommandError(f"--since: not an ISO date or datetime: {options['since']!r}") from None
            if timezone.is_naive(since):
                since = timezone.make_aware(since, timezone.get_current_timezone())
        try:
            verify_chain()  # never hand out a copy of a trail that was tampered with as if it were sound
        except AuditChainError as exc:
            raise CommandError(f"audit trail broken, not exported: {exc}") from exc
        count = 0
        fh = open(options["output"], "w", encoding="utf-8") if options["output"] else None  # noqa: SIM115
        try:
            for line in iter_lines(since=since):
                if fh is not None:
                    fh.write(line)
                else:
                    self.stdout.write(line, ending="")
                count += 1
        finally:
            if fh is not None:
                fh.close()
        self.stderr.write(f"exported {count} audit events")
