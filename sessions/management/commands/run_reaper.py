"""`manage.py run_reaper`: the former name of `run_worker`, kept so existing deployments keep working.

It runs every background duty, notification delivery included (sessions/management/commands/run_worker.py).
"""

from __future__ import annotations

from sessions.management.commands.run_worker import Command as WorkerCommand


class Command(WorkerCommand):
    help = "Alias of run_worker: the reaper, notification delivery and ending-soon notices."
