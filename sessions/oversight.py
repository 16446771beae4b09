"""Seeing what bypassed the portal: debug access in the cluster that no Ephemera session made.

Each reaper pass lists every pod once and flags
- ephemeral containers that no session made (e.g. `kubectl debug POD` run directly): ours
  are the ones a session row names, in the pod with the uid that row recorded;
- debug pods that no session made: kubectl's `node-debugger-*` pods, pods with our labels but
  no session row, and any privileged or host-namespace pod (ownership is never a label);
- sessions over for a minute whose debug access the cluster doesn't confirm gone;
- sessions running longer than EPHEMERA_LONG_SESSION_MINUTES.

A finding is keyed by what it is in the cluster (pod uid + container), so it is written,
audited and announced once however many reapers run; the webhook is retried on later passes
until it answers 2xx.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from portal.audit import record_event
from portal.kube.client import get_client
from portal.kube.specs import INSTANCE_LABEL, KUBECTL_MANAGED_BY, MANAGED_BY, MANAGED_BY_LABEL
from portal.notifications import outbox
from portal.notifications.constants import Event
from sessions.choices import SessionStatus
from sessions.models import DebugSession, Finding

logger = logging.getLogger(__name__)

WEBHOOK_TIMEOUT_SECONDS = 5
EPHEMERAL = "ephemeral_container"
DEBUG_POD = "debug_pod"
LONG_SESSION = "long_session"
UNSTOPPED = "unstopped_session"
_AUDIT_ACTIONS = {LONG_SESSION: "oversight.long_session", UNSTOPPED: "oversight.unstopped_session"}
CLUSTER_KINDS = (EPHEMERAL, DEBUG_POD)


def _owned(pods: list[dict[str, Any]]) -> dict[tuple[str, str], list[tuple[str, str, str]]]:
    """What the database says Ephemera made, for these pods: (ns, pod) -> [(container, uid, kind)]."""
    names = sorted({(p.get("metadata") or {}).get("name", "") for p in pods})
    owned: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
    for i in range(0, len(names), 500):
        rows = DebugSession.objects.filter(pod__in=names[i:i + 500]).exclude(container_name="").values_list(
            "namespace", "pod", "container_name", "pod_uid", "request__kind"
        )
        for ns, pod, container, uid, kind in rows:
            owned.setdefault((ns, pod), []).append((container, uid, kind))
    return owned


def _ours(owned: dict[tuple[str, str], list[tuple[str, str, str]]], ns: str, pod: str, uid: str, container: str,
          *, node_pod: bool) -> bool:
    """A session row made exactly this container in this very pod (uid; blank only after a crash
    between creating the pod and storing its uid). Labels and env vars prove nothing."""
    for c, row_uid, kind in owned.get((ns, pod), []):
        if c == container and (row_uid == uid or not row_uid) and (kind == "node") == node_pod:
            return True
    return False


def _copy_ours(owned: dict[tuple[str, str], list[tuple[str, str, str]]], ns: str, pod: str, uid: str) -> bool:
    """A session made this very pod as a copy (kubectl debug --copy-to): the whole pod is its."""
    return any(kind == "copy" and (row_uid == uid or not row_uid) for _c, row_uid, kind in owned.get((ns, pod), []))


def _pod_risk(spec: dict[str, Any]) -> list[str]:
    """What makes a pod a way onto its node, whoever made it."""
    risks = [f"host{ns}" for ns in ("PID", "Network", "IPC") if spec.get(f"host{ns}")]
    containers = [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]
    if any((c.get("securityContext") or {}).get("privileged") for c in containers):
        risks.append("privileged")
    if any((v.get("hostPath") or {}).get("path") == "/" for v in spec.get("volumes") or []):
        risks.append("hostPath /")
    return risks


def unmanaged_in_cluster(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What no session made, as dicts ready to become findings.

    Ownership comes from the database (namespace, pod name, pod uid, container), never from
    labels or environment variables anyone can set. Flagged: every ephemeral container no
    session made (`kubectl debug POD` run directly); every pod that looks like a debug pod
    (kubectl's or our labels, a node-debugger-* name) or is a way onto its node (privileged,
    host namespaces, the host's root mounted) that no session made. In the namespaces listed in
    EPHEMERA_OVERSIGHT_IGNORE_NAMESPACES (e.g. kube-system's own privileged daemons) a pod is not
    flagged for its privileges alone; ephemeral containers and debug pods are flagged there too.
    """
    owned = _owned(pods)
    ignored = set(settings.EPHEMERA_OVERSIGHT_IGNORE_NAMESPACES)
    found: list[dict[str, Any]] = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        spec = pod.get("spec") or {}
        ns, name, uid = meta.get("namespace", ""), meta.get("name", ""), meta.get("uid", "")
        labels = meta.get("labels") or {}
        for ec in spec.get("ephemeralContainers") or []:
            cname = ec.get("name", "")
            if _ours(owned, ns, name, uid, cname, node_pod=False):
                continue
            found.append({
                "key": f"{EPHEMERAL}:{uid or ns + '/' + name}:{cname}",
                "kind": EPHEMERAL, "namespace": ns, "pod": name, "container": cname,
                "detail": {"image": ec.get("image", ""), "target": ec.get("targetContainerName", ""),
                           "privileged": bool((ec.get("securityContext") or {}).get("privileged"))},
            })
        containers = spec.get("containers") or []
        if containers and all(_ours(owned, ns, name, uid, c.get("name", ""), node_pod=True) for c in containers):
            continue
        if _copy_ours(owned, ns, name, uid):
            continue
        managed_by = labels.get(MANAGED_BY_LABEL, "")
        risks = _pod_risk(spec) if ns not in ignored else []
        looks_like_debug_pod = managed_by in (KUBECTL_MANAGED_BY, MANAGED_BY) or name.startswith("node-debugger-")
        if not looks_like_debug_pod and not risks:
            continue
        found.append({
            "key": f"{DEBUG_POD}:{uid or ns + '/' + name}",
            "kind": DEBUG_POD, "namespace": ns, "pod": name, "container": ",".join(c.get("name", "") for c in containers),
            "detail": {"node": spec.get("nodeName", ""), "managed_by": managed_by,
                       # A label claiming another installation proves nothing; it is shown, not trusted.
                       "claims_instance": labels.get(INSTANCE_LABEL, "") if managed_by == MANAGED_BY else "",
                       "images": [c.get("image", "") for c in containers],
                       "risks": risks,
                       "host_pid": bool(spec.get("hostPID")),
                       "privileged": "privileged" in risks},
        })
    return found


def long_sessions(now: datetime) -> list[dict[str, Any]]:
    cutoff = now - timedelta(minutes=settings.EPHEMERA_LONG_SESSION_MINUTES)
    found = []
    for s in DebugSession.objects.filter(status=SessionStatus.RUNNING, started_at__lte=cutoff).select_related("request"):
        found.append({
            "key": f"{LONG_SESSION}:{s.pk}", "kind": LONG_SESSION, "namespace": s.namespace, "pod": s.pod,
            "container": s.container_name, "session": s,
            "detail": {"started_at": s.started_at.isoformat() if s.started_at else None,
                       "requester": s.request.requester.get_username(),
                       "threshold_minutes": settings.EPHEMERA_LONG_SESSION_MINUTES},
        })
    return found


def unstopped_sessions(now: datetime) -> list[dict[str, Any]]:
    """Sessions over for a while whose debug access the cluster doesn't confirm gone."""
    from sessions.cluster_stop import STOP_FINDING_AFTER

    found = []
    overdue = DebugSession.objects.filter(
        status__in=[SessionStatus.ENDED, SessionStatus.FAILED], cluster_clean_at__isnull=True,
        ended_at__lte=now - STOP_FINDING_AFTER,
    ).exclude(container_name="").select_related("request__requester")
    for s in overdue:
        found.append({
            "key": f"{UNSTOPPED}:{s.pk}", "kind": UNSTOPPED, "namespace": s.namespace, "pod": s.pod,
            "container": s.container_name, "session": s,
            "detail": {"message": f"debug container of session {s.pk} still running after its end",
                       "ended_at": s.ended_at.isoformat() if s.ended_at else None,
                       "requester": s.request.requester.get_username(), "last_attempt": s.progress},
        })
    return found


def _record(item: dict[str, Any], now: datetime) -> bool:
    """Store a new finding and its audit event in one transaction; False if already known."""
    try:
        with transaction.atomic():
            if Finding.objects.filter(key=item["key"]).exists():
                Finding.objects.filter(key=item["key"]).update(last_seen_at=now, gone_at=None)
                return False
            finding = Finding.objects.create(
                key=item["key"], kind=item["kind"], namespace=item["namespace"], pod=item["pod"],
                container=item["container"][:63], session=item.get("session"), detail=item["detail"],
                first_seen_at=now, last_seen_at=now,
            )
            session = item.get("session")
            record_event(
                action=_AUDIT_ACTIONS.get(item["kind"], "oversight.unmanaged_found"),
                actor=None,
                session=session,
                request=session.request if session is not None else None,
                data={"key": finding.key, "kind": finding.kind, "namespace": finding.namespace, "pod": finding.pod,
                      "container": item["container"], **finding.detail},
            )
            outbox.enqueue(Event.OVERSIGHT_FINDING, session=session, finding=payload(finding))
            return True
    except IntegrityError:  # another reaper recorded it first
        return False


def scan(*, now: datetime | None = None) -> int:
    """One oversight pass; returns how many new findings it recorded."""
    now = now or timezone.now()
    items = unmanaged_in_cluster(get_client().list_pods_raw(None)) + long_sessions(now) + unstopped_sessions(now)
    new = sum(1 for item in items if _record(item, now))
    seen = {item["key"] for item in items}
    for finding in Finding.objects.filter(gone_at__isnull=True).only("pk", "key"):
        if finding.key not in seen:
            Finding.objects.filter(pk=finding.pk, gone_at__isnull=True).update(gone_at=now)
    notify_pending()
    return new


def _where(url: str) -> str:
    """The webhook's scheme and host only: its path or query may hold a token."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}"


def payload(finding: Finding) -> dict[str, Any]:
    return {
        "event": "ephemera.finding",
        "cluster": settings.EPHEMERA_CLUSTER_NAME,
        "kind": finding.kind,
        "key": finding.key,
        "namespace": finding.namespace,
        "pod": finding.pod,
        "container": finding.container,
        "detail": finding.detail,
        "first_seen_at": finding.first_seen_at.isoformat(),
    }


def notify_pending() -> int:
    """POST each finding not yet announced; failures are logged (host only) and retried next pass."""
    url = settings.EPHEMERA_UNMANAGED_WEBHOOK_URL
    if not url:
        return 0
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        logger.error("EPHEMERA_UNMANAGED_WEBHOOK_URL must be an http(s) URL; not notifying")
        return 0
    sent = 0
    for finding in Finding.objects.filter(notified_at__isnull=True).order_by("first_seen_at")[:50]:
        # Claim this attempt: with two reapers, only the one whose update lands sends it.
        if not Finding.objects.filter(pk=finding.pk, notified_at__isnull=True, notify_attempts=finding.notify_attempts).update(
            notify_attempts=finding.notify_attempts + 1
        ):
            continue
        body = json.dumps(payload(finding)).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "ephemera-oversight"}
        req = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310 (http/https checked)
        try:
            with urllib.request.urlopen(req, timeout=WEBHOOK_TIMEOUT_SECONDS) as resp:  # noqa: S310 (URL from settings)
                ok = 200 <= resp.status < 300
                error = "" if ok else f"HTTP {resp.status}"
        except urllib.error.HTTPError as exc:
            ok, error = False, f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            ok, error = False, type(reason).__name__ if not isinstance(reason, str) else "connection failed"
        if ok:
            Finding.objects.filter(pk=finding.pk).update(notified_at=timezone.now(), notify_error="")
            sent += 1
        else:
            Finding.objects.filter(pk=finding.pk).update(notify_error=error[:300])
            logger.warning("oversight webhook to %s failed (%s); retrying next pass", _where(url), error)
    return sent
