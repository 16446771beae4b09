"""Making an ended session's debug access gone from the cluster, and proving it.

A session is `cluster_clean` only on the cluster's word: its ephemeral container's status
says terminated (portal.kube.sessions), or its node-debugger pod is gone. Until then it is
retried by every reaper pass, and after STOP_FINDING_AFTER an oversight finding says so
(sessions.oversight), webhook included.

The cluster part (`stop_target`) touches no database, so callers can run many at once in a
bounded pool (one hung pod doesn't hold the others) while the writes (`record_outcome`) stay
on the caller's thread and connection.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
import weakref
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import timedelta

from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from approvals.choices import RequestKind
from portal.audit import record_event
from portal.events import publish_on_commit, session_group
from portal.kube.client import get_client
from portal.kube.errors import KubeError, KubeNotFound
from portal.kube.sessions import stop_debug_container
from portal.kube.useragent import acting_for
from sessions.models import DebugSession

logger = logging.getLogger(__name__)

# After this long without the cluster's confirmation, a stop that keeps failing is a finding.
STOP_FINDING_AFTER = timedelta(minutes=1)
# Cluster stops at once (reaper passes, the portal's background stops): bounded, so a flood of
# ends can't open unbounded connections to the apiserver.
POOL_SIZE = 8
NODE_POD_GONE_SECONDS = 15.0

STOPPING = "stopping the debug access in the cluster"


@dataclass(frozen=True)
class StopTarget:
    """What to stop, read from the session row (so the cluster part needs no database)."""

    session_id: str
    node: bool  # a pod of the session's own (node debugger, or a copy): deleted, not stopped
    namespace: str
    pod: str
    container: str
    pod_uid: str = ""
    requester: str = ""  # whom the session is for: named in each call's User-Agent

    @classmethod
    def of(cls, session: DebugSession) -> StopTarget:
        return cls(str(session.pk), session.request.kind in (RequestKind.NODE, RequestKind.COPY), session.namespace,
                   session.pod,
                   session.container_name, session.pod_uid, session.request.requester.get_username())


@dataclass(frozen=True)
class StopOutcome:
    clean: bool
    summary: str
    acted: bool = False  # this stop ended the container or deleted the pod
    deleted_pod: bool = False


def stop_target(target: StopTarget) -> StopOutcome:
    """End the session's debug container or delete its node pod; clean only once confirmed."""
    try:
        with acting_for(target.session_id, target.requester):
            if target.node:
                return _delete_node_pod(target)
            stopped = stop_debug_container(target.namespace, target.pod, target.container)
        return StopOutcome(True, stopped.summary, acted=stopped.acted)
    except KubeError as exc:
        return StopOutcome(False, exc.message)


def _delete_node_pod(target: StopTarget) -> StopOutcome:
    client = get_client()
    # Only the pod Ephemera created (its uid): a pod someone later made under the same name is
    # not ours, and means ours is gone. A crash between the create and storing the uid leaves
    # it blank; then the name (random, recorded before the create) is all there is.
    deleted = client.delete_pod(target.namespace, target.pod, uid=target.pod_uid)
    deadline = time.monotonic() + NODE_POD_GONE_SECONDS
    while time.monotonic() < deadline:
        try:
            raw = client.get_pod_raw(target.namespace, target.pod)
            if target.pod_uid and (raw.get("metadata") or {}).get("uid") != target.pod_uid:
                raise KubeNotFound("a different pod has the name now")
        except KubeNotFound:
            return StopOutcome(True, "debug pod deleted" if deleted else "debug pod gone", acted=deleted,
                               deleted_pod=deleted)
        time.sleep(0.25)
    return StopOutcome(False, f"debug pod {target.namespace}/{target.pod} still exists after its deletion",
                       deleted_pod=deleted)


def record_outcome(target: StopTarget, outcome: StopOutcome, *, by: str, audit_failure: bool = False) -> None:
    """Write what the cluster said: clean (once), or still there (progress shown on the page)."""
    with transaction.atomic():
        session = DebugSession.objects.select_for_update(of=("self",)).select_related("request").get(pk=target.session_id)
        if session.cluster_clean_at is not None:
            return
        if outcome.deleted_pod:
            record_event(action="session.node_pod_deleted", actor=None, request=session.request, session=session,
                         data={"by": by, "pod": f"{target.namespace}/{target.pod}"})
        if outcome.clean:
            session.cluster_clean_at = timezone.now()
            session.progress = f"{outcome.summary} (confirmed by the cluster)"[:500]
            session.save(update_fields=["cluster_clean_at", "progress"])
            record_event(action="session.cluster_clean", actor=None, request=session.request, session=session,
                         data={"by": by, "summary": outcome.summary[:500]})
            _close_dangling_connects(session, by=by)
        else:
            session.progress = f"still stopping in the cluster: {outcome.summary}"[:500]
            session.save(update_fields=["progress"])
            if audit_failure:
                record_event(action="session.stop_failed", actor=None, request=session.request, session=session,
                             data={"by": by, "message": outcome.summary[:500]})
        publish_on_commit(session_group(session.pk), {
            "type": "session.changed", "id": str(session.pk), "status": str(session.status), "progress": session.progress,
            "message": "", "cluster_clean": session.cluster_clean_at is not None,
        })
    log = logger.info if outcome.clean else logger.warning
    log("session %s in the cluster (%s): %s", target.session_id, by, outcome.summary)


def _close_dangling_connects(session: DebugSession, *, by: str) -> None:
    """A portal killed mid-session never wrote `session.disconnected` for its terminals: with the
    session over and gone from the cluster, close each such connect in the trail, saying why."""
    from portal.models import AuditEvent

    events = AuditEvent.objects.filter(session=session, action__in=["session.connected", "session.disconnected"])
    connects = list(events.filter(action="session.connected").order_by("id").values_list("actor_id", flat=True))
    disconnects = list(events.filter(action="session.disconnected").values_list("actor_id", flat=True))
    for actor_id in disconnects:
        if actor_id in connects:
            connects.remove(actor_id)
    for actor_id in connects:
        record_event(action="session.disconnected", actor=None, request=session.request, session=session,
                     data={"by": by, "user_id": actor_id,
                           "why": "the terminal's portal process stopped without closing it; closed at the session's end"})


def stop_all(targets: Iterable[StopTarget], *, by: str) -> list[StopOutcome]:
    """Stop many at once (cluster calls in a bounded pool), then record each on this thread."""
    targets = list(targets)
    if not targets:
        return []
    outcomes: dict[int, StopOutcome] = {}
    with ThreadPoolExecutor(max_workers=min(POOL_SIZE, len(targets)), thread_name_prefix="stop") as pool:
        futures = {pool.submit(stop_target, target): i for i, target in enumerate(targets)}
        for future in as_completed(futures):  # each is recorded as soon as it is known
            i = futures[future]
            outcomes[i] = future.result()
            record_outcome(targets[i], outcomes[i], by=by)
    return [outcomes[i] for i in range(len(targets))]


_background = threading.BoundedSemaphore(POOL_SIZE)
_threads: weakref.WeakSet[threading.Thread] = weakref.WeakSet()


def stop_in_background(session_id: uuid.UUID | str) -> threading.Thread:
    """After an end committed: stop in the cluster without holding the request that ended it."""
    thread = threading.Thread(target=_run, args=(str(session_id),), name=f"stop-{session_id}", daemon=True)
    _threads.add(thread)
    thread.start()
    return thread


def join_background(timeout: float) -> bool:
    """Wait for the background stops started so far (tests, and a clean shutdown); True if all ended."""
    deadline = time.monotonic() + timeout
    for thread in list(_threads):
        thread.join(max(0.0, deadline - time.monotonic()))
    return not any(t.is_alive() for t in _threads)


def _run(session_id: str) -> None:
    close_old_connections()
    try:
        with _background:
            session = DebugSession.objects.select_related("request").get(pk=session_id)
            if session.cluster_clean_at is not None or not session.container_name:
                return
            target = StopTarget.of(session)
            record_outcome(target, stop_target(target), by="portal", audit_failure=True)
    except Exception:
        # The reaper retries whatever this didn't finish; this is only the fast path.
        logger.exception("stopping session %s in the cluster crashed", session_id)
    finally:
        connection.close()
