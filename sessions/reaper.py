"""The reaper: enforces time limits and brings the cluster back in line with the database.

The database is the truth about what should exist; the cluster is what does. Each pass:
1. expires pending requests nobody decided in time;
2. ends running sessions past their time limit (and stops their shells);
3. fails sessions stuck in provisioning (the portal died mid-way), so their container is swept;
4. ends running sessions whose debug container exited or whose pod vanished, and those whose
   requester's account was deactivated;
5. ends the debug containers still alive for sessions that are over (a crash between "ended"
   and "stopped", or a stop that failed), deletes the node-debugger pods of sessions that are
   over, and marks the session clean once the cluster confirms (sessions.cluster_stop);
6. looks for debug access that bypassed the portal (sessions.oversight). A pod is deleted only
   as the pod a session row recorded (name and uid): never for its labels, which anyone can
   set; a labelled pod no session knows is a finding for an admin, not something to delete.

Every step goes through the services, which lock the session row and are idempotent, so two
reapers at once (or a reaper and a portal) can't double-end or fork the audit trail.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from approvals.services import expire_pending
from portal import metrics
from portal.kube.client import ContainerState, ephemeral_state, get_client
from portal.kube.errors import KubeError, KubeNotFound
from sessions import cluster_stop
from sessions.choices import EndReason, SessionStatus
from sessions.models import DebugSession
from sessions.services import _fail as session_fail
from sessions.services import end_expired_sessions, session_end

logger = logging.getLogger(__name__)

# Slack on top of the provisioning timeout before a provisioning session counts as abandoned.
PROVISION_GRACE = timedelta(seconds=30)


@dataclass
class ReapReport:
    requests_expired: int = 0
    sessions_expired: int = 0
    provisioning_abandoned: int = 0
    sessions_gone: int = 0
    processes_stopped: int = 0
    node_pods_deleted: int = 0
    marked_clean: int = 0
    findings: int = 0
    requester_deactivated: int = 0
    errors: list[str] = field(default_factory=list)

    def any(self) -> bool:
        return any((self.requests_expired, self.sessions_expired, self.provisioning_abandoned,
                    self.sessions_gone, self.processes_stopped, self.node_pods_deleted, self.findings,
                    self.requester_deactivated, self.errors))


def reap_once(*, now: datetime | None = None) -> ReapReport:
    now = now or timezone.now()
    started = time.monotonic()
    report = ReapReport()
    report.requests_expired = expire_pending(now=now)
    # Ended here, stopped below with every other session that is over: one bounded pool, one
    # attempt per session per pass (a hung pod costs the pass one timeout, not two).
    report.sessions_expired = end_expired_sessions(now=now, stop=False)
    _fail_abandoned_provisioning(now, report)
    _end_sessions_whose_shell_is_gone(report)
    _end_sessions_of_deactivated_users(report)
    _sweep_finished_sessions(now, report)
    _oversight(now, report)
    metrics.reaper_pass(report, time.monotonic() - started)
    return report


def _oversight(now: datetime, report: ReapReport) -> None:
    from sessions import oversight  # its own module: detection, findings, the webhook

    try:
        report.findings = oversight.scan(now=now)
    except KubeError as exc:
        report.errors.append(f"oversight: {exc.message}")




def _container_state(session: DebugSession) -> ContainerState | None:
    """The debug container's state, or None when the pod no longer exists."""
    try:
        raw = get_client().get_pod_raw(session.namespace, session.pod)
    except KubeNotFound:
        return None
    return ephemeral_state(raw, session.container_name)


def _fail_abandoned_provisioning(now: datetime, report: ReapReport) -> None:
    cutoff = now - timedelta(seconds=settings.EPHEMERA_PROVISION_TIMEOUT_SECONDS) - PROVISION_GRACE
    for pk in DebugSession.objects.filter(status=SessionStatus.PROVISIONING, created_at__lt=cutoff).values_list("pk", flat=True):
        # The container (if it was added) is swept by _sweep_finished_sessions next.
        session_fail(session_id=pk, message="provisioning was interrupted (the portal stopped before the debug container ran)")
        report.provisioning_abandoned += 1


def _end_sessions_whose_shell_is_gone(report: ReapReport) -> None:
    for session in DebugSession.objects.filter(status=SessionStatus.RUNNING):
        try:
            state = _container_state(session)
        except KubeError as exc:
            report.errors.append(f"session {session.pk}: {exc.message}")
            continue
        if state is None:
            session_end(session_id=session.pk, actor=None, reason=EndReason.POD_GONE)
        elif state.state == "terminated":
            session_end(session_id=session.pk, actor=None, reason=EndReason.CONTAINER_EXITED)
        else:
            continue
        report.sessions_gone += 1


def _end_sessions_of_deactivated_users(report: ReapReport) -> None:
    """A deactivated account keeps no debug access: its open sockets close at once
    (portal.access_events), and here its running sessions end and their shells stop."""
    running = DebugSession.objects.filter(status=SessionStatus.RUNNING, request__requester__is_active=False)
    for pk in running.values_list("pk", flat=True):
        session_end(session_id=pk, actor=None, reason=EndReason.ADMIN, comment="The requester's account was deactivated.")
        report.requester_deactivated += 1


def _sweep_finished_sessions(now: datetime, report: ReapReport) -> None:
    """Every session that is over but not confirmed gone from the cluster: stop it (again).

    Clean is the cluster's word (sessions.cluster_stop); a stop that keeps failing becomes an
    oversight finding after STOP_FINDING_AFTER (sessions.oversight.unstopped_sessions).
    """
    finished = DebugSession.objects.filter(
        status__in=[SessionStatus.ENDED, SessionStatus.FAILED], cluster_clean_at__isnull=True
    ).exclude(container_name="").select_related("request")
    targets = [cluster_stop.StopTarget.of(s) for s in finished]
    for target, outcome in zip(targets, cluster_stop.stop_all(targets, by="reaper"), strict=True):
        if outcome.clean:
            report.marked_clean += 1
            report.processes_stopped += int(outcome.acted and not outcome.deleted_pod)
        else:
            report.errors.append(f"session {target.session_id}: {outcome.summary}")
        if outcome.deleted_pod:
            report.node_pods_deleted += 1
