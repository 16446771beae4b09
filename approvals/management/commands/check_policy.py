"""`manage.py check_policy FILE`: the start-up checks of a policy file, for a policy repo's CI.

Exits 0 and prints the rules as understood, or exits 1 with the problem (file, rule, key).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from approvals.policy.schema import PolicyError, Rule, load


def _describe(rule: Rule) -> list[str]:
    m = rule.match
    matches = [f"{key} in {list(values)}" for key in ("cluster", "namespace", "kind", "profile", "image")
               if (values := getattr(m, key)) is not None]
    lines = [f"- {rule.name}: when {' and '.join(matches) if matches else 'anything (no match: fits every request)'}",
             f"    {rule.summary()}"]
    if rule.images is not None:
        lines.append(f"    images: {', '.join(rule.images)}")
    if rule.ticket.pattern:
        lines.append(f"    ticket pattern: {rule.ticket.pattern}")
    return lines


class Command(BaseCommand):
    help = "Check a policy file as start-up would, and print its rules as understood."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="the policy YAML (the EPHEMERA_POLICY_FILE format, docs/policy.md)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            policy = load(options["file"], default_approvers=settings.EPHEMERA_APPROVER_GROUP)
        except PolicyError as exc:
            raise CommandError(str(exc)) from None
        out = [f"{policy.source}: OK, sha256 {policy.sha256}", f"images: {', '.join(policy.images)}",
               "rules, tried in order (the first that matches decides):"]
        for rule in policy.rules:
            out += _describe(rule)
        self.stdout.write("\n".join(out))
