"""Every write to a debug session: create, provision, connect/disconnect, end.

Each move follows SESSION_MOVES, writes its audit event in the same transaction and
publishes `session.changed` to the session's group after commit. Cluster calls happen
outside transactions; the row is re-read under lock before each write, so a session ended
while it was still provisioning stays ended.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any, Literal

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from approvals.choices import RequestKind
from approvals.models import DebugRequest
from approvals.policy.schema import DEFAULT_MAX_DURATION_MINUTES
from portal import permissions
from portal.audit import AuditOrigin, record_event
from portal.events import APPROVALS_GROUP, publish_on_commit, session_group
from portal.kube import (
    ContainerState,
    KubeError,
    KubeNotFound,
    KubeTimeout,
    ephemeral_container,
    get_client,
    random_container_name,
)
from portal.kube.config import KubeConfigError
from portal.kube.specs import (
    NODE_CONTAINER,
    TIMEOUT_SLACK_SECONDS,
    copy_pod,
    copy_pod_name,
    node_debugger_pod,
    node_pod_name,
    session_labels,
    time_limited_command,
)
from portal.kube.useragent import acting_for
from portal.notifications import outbox
from portal.notifications.constants import Event
from sessions import cluster_stop
from sessions.choices import LIVE_STATUSES, SESSION_MOVES, EndReason, SessionStatus
from sessions.models import DebugSession, lock_session

logger = logging.getLogger(__name__)

# Waiting reasons the kubelet won't get past on its own: fail now instead of at the timeout.
# ErrImagePull is not one: the kubelet retries once before backing off, and a registry hiccup
# shouldn't cost the engineer their approval.
_PULL_FAILURES = {"ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
_START_FAILURES = {"CreateContainerError", "CreateContainerConfigError", "RunContainerError"}


class SessionConflict(Exception):
    """The session is not in a state that allows this."""


END_COMMENT_MAX_LENGTH = 2000
# Ending someone else's session needs a reason: the requester sees it and the audit keeps it.
_REASON_REQUIRED = frozenset({EndReason.REVOKED, EndReason.ADMIN})


def end_message(session: DebugSession) -> str:
    """What the requester is told about why their session is over."""
    if session.failure_message:
        return session.failure_message
    label = EndReason(session.end_reason).label if session.end_reason in EndReason.values else session.end_reason
    if session.end_comment:
        who = f" ({session.ended_by.get_username()})" if session.ended_by is not None else ""
        return f"{label}{who}: {session.end_comment}"
    return str(label)


def _publish(session: DebugSession) -> None:
    message = end_message(session)
    publish_on_commit(
        session_group(session.pk),
        {
            "type": "session.changed",
            "id": str(session.pk),
            "status": str(session.status),
            "progress": session.progress,
            "message": message,
        },
    )
    # The approvals queue shows "already has a session running on this target": keep it current.
    publish_on_commit(APPROVALS_GROUP, {"type": "request.changed", "id": str(session.request_id), "status": "session"})


def _move(session: DebugSession, to: str) -> None:
    if to not in SESSION_MOVES[session.status]:
        raise SessionConflict(f"This session is {session.status}; it can't become {to}.")
    session.status = to


def session_create_for_request(*, request: DebugRequest, origin: AuditOrigin | None) -> DebugSession:
    """Called inside the approving transaction: the session row, then provisioning after commit."""
    from sessions import provisioner

    # The name is drawn without a cluster call (no network inside a transaction); the
    # provisioner re-draws it against the pod's real names before patching.
    if request.kind == RequestKind.NODE:
        # The pod's name is fixed here, in the same transaction as the session, so whatever
        # happens next the reaper knows which pod belongs to it.
        where = {"namespace": settings.EPHEMERA_NODE_DEBUG_NAMESPACE, "pod": node_pod_name(request.node),
                 "container_name": NODE_CONTAINER}
    elif request.kind == RequestKind.COPY:
        # The copy's name too: the reaper deletes it (by the uid recorded once created), never the pod it copies.
        where = {"namespace": request.namespace, "pod": copy_pod_name(request.pod),
                 "container_name": random_container_name([])}
    else:
        where = {"namespace": request.namespace, "pod": request.pod, "container_name": random_container_name([])}
    session = DebugSession.objects.create(
        request=request,
        status=SessionStatus.PROVISIONING,
        created_at=timezone.now(),
        progress="queued",
        **where,
    )
    record_event(
        action="session.created",
        actor=None,
        request=request,
        session=session,
        origin=origin,
        data={"namespace": session.namespace, "pod": session.pod, "container": session.container_name},
    )
    _publish(session)
    transaction.on_commit(lambda: provisioner.start(session.pk))
    return session


def _claim(session_id: uuid.UUID | str) -> bool:
    """Make this call the session's only provisioner; False if it is taken or no longer provisioning.

    Nobody re-claims: a provisioner that died with the claim leaves the session to the
    reaper, which fails it and sweeps whatever it had created.
    """
    with transaction.atomic():
        session = lock_session(session_id)
        if session.status != SessionStatus.PROVISIONING or session.provision_claim:
            return False
        session.provision_claim = uuid.uuid4().hex
        session.save(update_fields=["provision_claim"])
        return True


def _is_over(session_id: uuid.UUID | str) -> bool:
    return DebugSession.objects.filter(pk=session_id, status__in=[SessionStatus.ENDED, SessionStatus.FAILED]).exists()


def _set_progress(session_id: uuid.UUID | str, progress: str, *, container_name: str | None = None) -> bool:
    """Store and publish progress; False if the session is no longer provisioning."""
    with transaction.atomic():
        session = lock_session(session_id)
        if session.status != SessionStatus.PROVISIONING:
            return False
        session.progress = progress[:500]
        fields = ["progress"]
        if container_name:
            session.container_name = container_name
            fields.append("container_name")
        session.save(update_fields=fields)
        _publish(session)
        return True


def _fail(session_id: uuid.UUID | str, message: str) -> None:
    with transaction.atomic():
        session = lock_session(session_id)
        if session.status not in LIVE_STATUSES:
            return
        _move(session, SessionStatus.FAILED)
        session.failure_message = message
        session.progress = "failed"
        session.ended_at = timezone.now()
        session.save(update_fields=["status", "failure_message", "progress", "ended_at"])
        record_event(action="session.failed", actor=None, request=session.request, session=session, data={"message": message})
        # A failure ends the session too: the requester hears why (session.ended, failed).
        outbox.enqueue(Event.SESSION_ENDED, session=session, detail={"reason": message, "failed": True})
        _publish(session)


def _mark_running(session_id: uuid.UUID | str) -> bool:
    with transaction.atomic():
        session = lock_session(session_id)
        if session.status != SessionStatus.PROVISIONING:
            return False
        _move(session, SessionStatus.RUNNING)
        now = timezone.now()
        session.started_at = now
        if clock_of(session.request) == "first_connect":
            # The time starts at the first terminal connect; until then the session waits at most
            # as long as a request waits for its decision.
            session.expires_at = now + timedelta(minutes=settings.EPHEMERA_REQUEST_TTL_MINUTES)
            session.progress = "running: the time starts when the terminal first connects"
        else:
            session.clock_started_at = now
            session.expires_at = now + timedelta(minutes=session.request.duration_minutes)
            session.progress = "running"
        session.save(update_fields=["status", "started_at", "expires_at", "progress", "clock_started_at"])
        record_event(
            action="session.provisioned",
            actor=None,
            request=session.request,
            session=session,
            data={
                "namespace": session.namespace,
                "pod": session.pod,
                "container": session.container_name,
                "expires_at": session.expires_at.isoformat(),
            },
        )
        outbox.enqueue(Event.SESSION_STARTED, session=session)
        _publish(session)
        return True


def _failure_for_state(session: DebugSession, state: ContainerState) -> str | None:
    if state.state == "terminated":
        return f"the debug container exited before it could be used ({state.describe()})"
    if state.state == "waiting" and state.reason in _PULL_FAILURES:
        detail = f": {state.message}" if state.message else ""
        return f"image {session.request.image} can't be pulled: {state.reason}{detail}"
    if state.state == "waiting" and state.reason in _START_FAILURES:
        hint = ""
        if "runAsNonRoot" in (state.message or ""):
            # kubectl's restricted profile sets runAsNonRoot; busybox's image runs as root.
            hint = (f". The {session.request.profile} profile runs the debug container as non-root: ask again with "
                    "an image whose user is not root (gcr.io/distroless/base:debug-nonroot has a busybox shell)")
        return f"the debug container can't start: {state.describe()}{hint}"
    return None


def session_provision(*, session_id: uuid.UUID | str) -> None:
    """Add the ephemeral container and wait until it runs; blocking (run it in a thread).

    Ends with the session running, or failed with a message a person can act on.
    """
    if not _claim(session_id):
        return
    session = DebugSession.objects.select_related("request__requester").get(pk=session_id)
    with acting_for(session.pk, session.request.requester.get_username()):
        _provision(session)


def _provision(session: DebugSession) -> None:
    session_id = session.pk
    req = session.request
    where = f"{session.namespace}/{session.pod}"
    try:
        client = get_client()
        if req.kind == RequestKind.NODE:
            name = _create_node_pod(session, client)
        elif req.kind == RequestKind.COPY:
            name = _create_copy_pod(session, client)
        else:
            name = _add_ephemeral_container(session, client)
        if name is None:
            return
        _set_progress(session_id, "waiting for the debug container to start")
        timeout = settings.EPHEMERA_PROVISION_TIMEOUT_SECONDS
        for state in client.watch_ephemeral_container(session.namespace, session.pod, name, timeout=timeout):
            failure = _failure_for_state(session, state)
            if failure:
                _fail(session_id, failure)
                return
            if state.state == "running":
                _mark_running(session_id)
                return
            if not _set_progress(session_id, state.describe()):
                return
        _fail(session_id, "the debug container's state could not be followed to the end")
    except KubeNotFound:
        _fail(session_id, f"pod {where} no longer exists")
    except KubeTimeout as exc:
        _fail(session_id, f"timed out: {exc.message}")
    except KubeError as exc:
        _fail(session_id, exc.message)
    except KubeConfigError:
        _fail(session_id, "the portal's cluster connection is not configured (see the server log)")
        raise
    finally:
        # Ended or failed while we worked: don't leave a shell (or a node pod) behind. Only
        # then: a session that runs is never touched here.
        if _is_over(session_id):
            over = DebugSession.objects.select_related("request").get(pk=session_id)
            if over.container_name:
                target = cluster_stop.StopTarget.of(over)
                cluster_stop.record_outcome(target, cluster_stop.stop_target(target), by="provisioner")


def cluster_time_limit_seconds(req: DebugRequest) -> int:
    """The backstop inside the cluster: the longest the session may ever run (its duration plus
    the most extensions may add), plus slack so the portal's own end always comes first."""
    waiting = settings.EPHEMERA_REQUEST_TTL_MINUTES if clock_of(req) == "first_connect" else 0
    return (waiting + req.duration_minutes + max_duration_minutes(req)) * 60 + TIMEOUT_SLACK_SECONDS


def clock_of(req: DebugRequest) -> str:
    return str((req.policy or {}).get("clock") or "approval")


def max_duration_minutes(req: DebugRequest) -> int:
    """The request's rule's maximum (extensions add up to at most this), as it was when asked."""
    return int((req.policy or {}).get("max_duration_minutes") or DEFAULT_MAX_DURATION_MINUTES)


def _add_ephemeral_container(session: DebugSession, client: Any) -> str | None:
    """PATCH the debug container into the target pod; its name, or None if the session is over."""
    req = session.request
    where = f"{session.namespace}/{session.pod}"
    _set_progress(session.pk, f"checking pod {where}")
    pod = client.get_pod(session.namespace, session.pod)
    if req.container not in pod.container_names:
        _fail(session.pk, f"pod {where} no longer has a container {req.container!r}")
        return None
    name = session.container_name
    if name in pod.all_container_names:
        name = random_container_name(pod.all_container_names)
    spec = ephemeral_container(
        name=name,
        image=req.image,
        target_container=req.container,
        profile=req.profile,
        session_id=str(session.pk),
        command=time_limited_command(req.image, cluster_time_limit_seconds(req)),
    )
    # The name is recorded before the PATCH, so a crash right after it still leaves the
    # reaper knowing which container to sweep.
    if not _set_progress(session.pk, f"adding debug container {name}", container_name=name):
        return None
    _remember_pod_uid(session.pk, pod.uid)
    client.add_ephemeral_container(session.namespace, session.pod, spec, pod.ephemeral_container_names)
    return name


def _create_node_pod(session: DebugSession, client: Any) -> str | None:
    """Create the node-debugger pod (its name was recorded with the session, before this call)."""
    req = session.request
    if not _set_progress(session.pk, f"creating node-debugger pod {session.namespace}/{session.pod} on node {req.node}"):
        return None
    body = node_debugger_pod(
        name=session.pod,
        node=req.node,
        image=req.image,
        profile=req.profile,
        session_id=str(session.pk),
        command=time_limited_command(req.image, cluster_time_limit_seconds(req)),
        labels=session_labels(str(session.pk)),
    )
    created = client.create_pod(session.namespace, body)
    _remember_pod_uid(session.pk, str((created.get("metadata") or {}).get("uid") or ""))
    return session.container_name


def _create_copy_pod(session: DebugSession, client: Any) -> str | None:
    """Create the copy of the pod as `kubectl debug --copy-to` would, from the pod as it is now."""
    req = session.request
    options = req.copy_options or {}
    source = client.get_pod_raw(req.namespace, req.pod)
    names = [c.get("name", "") for key in ("containers", "initContainers") for c in (source.get("spec") or {}).get(key) or []]
    name = session.container_name
    if name in names:  # drawn before the pod was read: re-drawn against its names
        name = random_container_name(names)
    if not _set_progress(session.pk, f"creating {session.namespace}/{session.pod}, a copy of pod {req.pod}",
                         container_name=name):
        return None
    body = copy_pod(
        source,
        name=session.pod,
        container=name,
        image=req.image,
        profile=req.profile,
        session_id=str(session.pk),
        command=time_limited_command(req.image, cluster_time_limit_seconds(req)),
        share_processes=bool(options.get("share_processes", True)),
        same_node=bool(options.get("same_node", False)),
        set_image=dict(options.get("set_image") or {}),
        target=req.container,
        target_command=list(options.get("command") or []),
        labels=session_labels(str(session.pk)),
    )
    created = client.create_pod(session.namespace, body)
    _remember_pod_uid(session.pk, str((created.get("metadata") or {}).get("uid") or ""))
    return name


def _remember_pod_uid(session_id: uuid.UUID | str, uid: str) -> None:
    """Whatever the session's status by now: the uid is what later cleanup and oversight go by."""
    DebugSession.objects.filter(pk=session_id).update(pod_uid=uid)


def session_connected(*, session_id: uuid.UUID | str, user: Any, origin: AuditOrigin | None) -> DebugSession:
    """A terminal attached. Re-checks access, so no caller can skip the rule."""
    with transaction.atomic():
        session = lock_session(session_id)
        if not permissions.can_use_terminal(user, session):
            raise PermissionDenied("This terminal is not available to you.")
        record_event(action="session.connected", actor=user, request=session.request, session=session, origin=origin)
        if session.clock_started_at is None and clock_of(session.request) == "first_connect":
            # `clock: first_connect`: the session's time starts now, with the full duration.
            now = timezone.now()
            session.clock_started_at = now
            session.expires_at = now + timedelta(minutes=session.request.duration_minutes)
            session.progress = "running"
            session.save(update_fields=["clock_started_at", "expires_at", "progress"])
            record_event(action="session.clock_started", actor=user, request=session.request, session=session,
                         data={"expires_at": session.expires_at.isoformat(), "rule": (session.request.policy or {}).get("rule")})
            publish_on_commit(session_group(session.pk), {
                "type": "session.changed", "id": str(session.pk), "status": str(session.status), "progress": session.progress,
                "message": "", "expires_at": session.expires_at.isoformat(),
            })
        return session


def session_disconnected(
    *, session_id: uuid.UUID | str, user: Any, origin: AuditOrigin | None, data: dict[str, Any] | None = None
) -> None:
    with transaction.atomic():
        session = lock_session(session_id)
        record_event(
            action="session.disconnected", actor=user, request=session.request, session=session, origin=origin, data=data
        )


def session_end(
    *,
    session_id: uuid.UUID | str,
    actor: Any,
    reason: EndReason | str,
    origin: AuditOrigin | None = None,
    comment: str = "",
    cluster: Literal["now", "background", "caller"] = "now",
) -> DebugSession:
    """End the session (idempotent) and stop its debug access in the cluster.

    `actor` None means the system (time limit, container gone). The database says "ended"
    before the cluster is touched, so an unreachable cluster can't keep a session alive.
    `cluster` says who stops it there: "now" before returning; "background" in a thread after
    the commit (views, the API and websockets answer at once; the page shows the progress);
    "caller" when the caller batches the stops (the reaper). Whichever, the session is clean
    only once the cluster confirms (sessions.cluster_stop), and the reaper retries until then.
    """
    if reason not in EndReason.values:
        raise ValueError(f"unknown end reason {reason!r}")
    comment = (comment or "").strip()
    if len(comment) > END_COMMENT_MAX_LENGTH:
        raise ValidationError({"reason": [f"Keep the reason under {END_COMMENT_MAX_LENGTH} characters."]})
    with transaction.atomic():
        session = lock_session(session_id)
        if actor is not None and not permissions.can_end_session(actor, session):
            raise PermissionDenied("You can't end this session.")
        if session.status not in LIVE_STATUSES:
            return session
        if reason == EndReason.EXPIRED and session.expires_at and session.expires_at > timezone.now():
            return session  # extended since the caller looked: not expired after all
        if reason in _REASON_REQUIRED and actor is not None and not comment:
            raise ValidationError({"reason": ["Say why you end this session (the requester sees this)."]})
        was_running = session.status == SessionStatus.RUNNING
        _move(session, SessionStatus.ENDED)
        session.ended_at = timezone.now()
        session.end_reason = str(reason)
        session.ended_by = actor
        session.end_comment = comment
        session.progress = cluster_stop.STOPPING if was_running else "ended"
        session.save(update_fields=["status", "ended_at", "end_reason", "ended_by", "end_comment", "progress"])
        # An extension nobody decided yet has nothing left to extend.
        session.extensions.filter(status="pending").update(status="cancelled", decided_at=session.ended_at)
        record_event(
            action="session.ended",
            actor=actor,
            request=session.request,
            session=session,
            origin=origin,
            data={"reason": str(reason), "comment": comment},
        )
        outbox.enqueue(Event.SESSION_ENDED, session=session, actor=actor,
                       detail={"reason": end_message(session), "end_reason": str(reason), "comment": comment})
        _publish(session)
    if was_running:  # a provisioning session is cleaned up by its provisioner (or the reaper)
        if cluster == "now":
            target = cluster_stop.StopTarget.of(session)
            cluster_stop.record_outcome(target, cluster_stop.stop_target(target), by="portal", audit_failure=True)
        elif cluster == "background":
            pk = session.pk
            transaction.on_commit(lambda: cluster_stop.stop_in_background(pk))
    return session


def end_reason_for(user: Any, session: DebugSession) -> EndReason:
    """Why a person ends a session: their own, revoked by an approver, or an admin's call."""
    if session.request.requester_id == getattr(user, "pk", None):
        return EndReason.USER
    if permissions.may_approve(user, session.request):
        return EndReason.REVOKED
    return EndReason.ADMIN


def end_expired_sessions(*, now: datetime | None = None, stop: bool = True) -> int:
    """End every running session past its time limit; return how many.

    The ends are written one by one (each a short transaction); their cluster stops then run
    together in a bounded pool, so one hung pod doesn't delay the others' ends. `stop=False`:
    the caller stops them (the reaper's sweep does, with every other unclean session).
    """
    now = now or timezone.now()
    due = list(DebugSession.objects.filter(status=SessionStatus.RUNNING, expires_at__lte=now).values_list("pk", flat=True))
    targets = []
    for pk in due:
        session = session_end(session_id=pk, actor=None, reason=EndReason.EXPIRED, cluster="caller")
        if session.status == SessionStatus.ENDED and session.end_reason == EndReason.EXPIRED and session.ended_by is None:
            targets.append(cluster_stop.StopTarget.of(session))
    if stop:
        cluster_stop.stop_all(targets, by="reaper")
    return len(targets)
