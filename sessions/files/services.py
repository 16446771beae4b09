"""Who may move which files, and the trail each transfer leaves (audit, recording marker, kept bytes)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction

from approvals.choices import RequestKind
from approvals.policy.schema import Files
from portal.audit import AuditOrigin, record_event
from portal.kube.client import get_client
from portal.kube.files import target_pid
from sessions.choices import SessionStatus
from sessions.files.models import FileTransfer, FileTransferChunk
from sessions.models import DebugSession
from sessions.recording.recorder import Batch
from sessions.recording.services import recording_append

KEEP_CHUNK = 256 * 1024  # kept bytes are written in pieces this big as they pass


class TransferRefused(Exception):
    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def files_rules(session: DebugSession) -> Files:
    """The rule's `files` as the request was approved under (its policy snapshot)."""
    req = session.request
    snap = (req.policy or {}).get("files")
    if isinstance(snap, dict):
        return Files(download=bool(snap.get("download")), upload=bool(snap.get("upload")),
                     max_mb=int(snap.get("max_mb") or 50))
    return Files.default_for(kind=req.kind, profile=req.profile)


def target_root(session: DebugSession) -> str:
    """Where the debug container reaches the target's filesystem, as the page says it: the
    node's root at /host, the target's PID 1 (the container it joined with --target), or, in a
    copy whose containers share one PID namespace, the target's first process."""
    if session.request.kind == RequestKind.NODE:
        return "/host"
    if session.request.kind == RequestKind.COPY:
        return "/proc/<the target's pid>/root"
    return "/proc/1/root"


def resolve_root(session: DebugSession) -> str:
    """The root to read under, found in the cluster now (call within acting_for); FileError if none.

    Where the target's pod shares one PID namespace (shareProcessNamespace: a copy made with
    share_processes, or a pod that asks for it) PID 1 is the pause process, so the target's
    first process is looked up by its container id.
    """
    if session.request.kind == RequestKind.NODE:
        return "/host"
    pod = get_client().get_pod_raw(session.namespace, session.pod)
    if not (pod.get("spec") or {}).get("shareProcessNamespace"):
        return "/proc/1/root"
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    target: dict[str, Any] = next((c for c in statuses if c.get("name") == session.request.container), {})
    container_id = str(target.get("containerID") or "").partition("://")[2]
    pid = target_pid(session.namespace, session.pod, session.container_name, container_id)
    return f"/proc/{pid}/root"


def check_allowed(user: Any, session: DebugSession, direction: str) -> Files:
    """The rules that apply, or TransferRefused saying why not."""
    if user.pk != session.request.requester_id:
        raise TransferRefused("Only the session's requester can move files in and out of it.")
    if session.status != SessionStatus.RUNNING:
        raise TransferRefused("The session is not running.", 409)
    shares = (session.request.copy_options or {}).get("share_processes", True)
    if session.request.kind == RequestKind.COPY and not shares and direction == FileTransfer.Direction.DOWNLOAD:
        # Without one PID namespace the debug container can't see the target's processes at all.
        raise TransferRefused("This copy was made without shared processes (share_processes: false): the debug "
                              "container can't reach the target's files. Uploads and the terminal still work.", 400)
    rules = files_rules(session)
    allowed = rules.download if direction == FileTransfer.Direction.DOWNLOAD else rules.upload
    if not allowed:
        rule = (session.request.policy or {}).get("rule", "")
        verb = "downloads" if direction == FileTransfer.Direction.DOWNLOAD else "uploads"
        raise TransferRefused(f"The policy (rule {rule or 'default'}) allows no {verb} in this session.")
    return rules


def refused(*, user: Any, session: DebugSession, direction: str, path: str, why: str, origin: AuditOrigin | None) -> None:
    with transaction.atomic():
        record_event(action="session.file_refused", actor=user, request=session.request, session=session, origin=origin,
                     data={"direction": direction, "path": path[:500], "why": why[:300]})


def start(*, user: Any, session: DebugSession, direction: str, path: str, archive: bool = False,
          origin: AuditOrigin | None = None) -> FileTransfer:
    """The transfer's row and its first audit event, before a byte moves: a portal that dies
    mid-transfer still leaves who began moving what (the row stays `streaming`)."""
    with transaction.atomic():
        transfer = FileTransfer.objects.create(session=session, actor=user, direction=direction, path=path, archive=archive,
                                               kept=settings.EPHEMERA_KEEP_TRANSFERRED_FILES
                                               and direction == FileTransfer.Direction.DOWNLOAD)
        record_event(action="session.file_started", actor=user, request=session.request, session=session, origin=origin,
                     data={"transfer": transfer.pk, "direction": direction, "path": path, "archive": archive})
    return transfer


@dataclass
class Progress:
    """A transfer's running totals; keeps the bytes (in KEEP_CHUNK pieces) when the setting says so."""

    transfer: FileTransfer
    size: int = 0
    digest: Any = field(default_factory=hashlib.sha256)
    _pending: bytearray = field(default_factory=bytearray)
    _seq: int = 0

    def add(self, data: bytes) -> None:
        self.size += len(data)
        self.digest.update(data)
        if self.transfer.kept:
            self._pending += data
            if len(self._pending) >= KEEP_CHUNK:
                self.flush()

    def flush(self) -> None:
        if self._pending:
            FileTransferChunk.objects.create(transfer=self.transfer, seq=self._seq, data=bytes(self._pending))
            self._seq += 1
            self._pending.clear()


def finish(progress: Progress, *, error: str = "", origin: AuditOrigin | None) -> FileTransfer:
    """Record the outcome: the row, an audit event with path, size and sha256, a recording marker."""
    if not error:
        progress.flush()
    transfer = progress.transfer
    session = DebugSession.objects.select_related("request").get(pk=transfer.session_id)
    transfer.size, transfer.sha256 = progress.size, progress.digest.hexdigest()
    transfer.outcome = FileTransfer.Outcome.FAILED if error else FileTransfer.Outcome.DONE
    transfer.error = error[:500]
    with transaction.atomic():
        transfer.save(update_fields=["size", "sha256", "outcome", "error"])
        action = "session.file_downloaded" if transfer.direction == FileTransfer.Direction.DOWNLOAD else "session.file_uploaded"
        record_event(action=action if not error else "session.file_failed", actor=transfer.actor, request=session.request,
                     session=session, origin=origin,
                     data={"transfer": transfer.pk, "direction": transfer.direction, "path": transfer.path,
                           "archive": transfer.archive, "size": transfer.size, "sha256": transfer.sha256,
                           "kept": transfer.kept and not error, **({"error": transfer.error} if error else {})})
    what = "downloaded" if transfer.direction == FileTransfer.Direction.DOWNLOAD else "uploaded"
    label = (f"{transfer.actor.get_username()} {what} {transfer.path}{' (.tar.gz)' if transfer.archive else ''}: "
             f"{transfer.size} bytes, sha256 {transfer.sha256}") if not error else (
             f"{transfer.actor.get_username()}: {transfer.direction} of {transfer.path} failed: {transfer.error}")
    recording_append(session_id=str(session.pk), batch=Batch(events=[(time.time(), "m", label)]),
                     records_input=settings.EPHEMERA_RECORD_INPUT)
    return transfer
