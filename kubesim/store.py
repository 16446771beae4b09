"""In-memory object store with a monotonic global resourceVersion and a bounded event history.

One store per cluster, used only from the server's event loop (so no locking).
"""

from __future__ import annotations

import asyncio
import builtins
import copy
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubesim.errors import already_exists, gone, not_found

Key = tuple[str, str, str]  # (resource, namespace or "", name)


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Event:
    rv: int
    resource: str
    type: str  # ADDED | MODIFIED | DELETED
    obj: dict[str, Any]
    prev: dict[str, Any] | None = None  # MODIFIED: the object before, so watches can see selector changes


@dataclass(eq=False)  # identity semantics: subscriptions live in a set
class Subscription:
    resource: str
    namespace: str | None
    queue: asyncio.Queue[Event | None] = field(default_factory=asyncio.Queue)


class Store:
    def __init__(self, history: int = 1000) -> None:
        self._rv = 1
        self._objects: dict[Key, dict[str, Any]] = {}
        # Watch replay window: a watch from an rv older than this gets 410 Gone, like etcd compaction.
        self._history: deque[Event] = deque(maxlen=history)
        self._subs: set[Subscription] = set()

    @property
    def resource_version(self) -> int:
        return self._rv

    def oldest_replayable(self) -> int:
        """Smallest rv a watch may start from (events after it are all still in history)."""
        if len(self._history) < (self._history.maxlen or 0):
            return 0
        return self._history[0].rv - 1

    # reads -----------------------------------------------------------------
    def get(self, resource: str, namespace: str, name: str) -> dict[str, Any]:
        obj = self._objects.get((resource, namespace, name))
        if obj is None:
            raise not_found(resource, name)
        return copy.deepcopy(obj)

    def peek(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The live object (no copy) for callers that only read."""
        return self._objects.get((resource, namespace, name))

    def list(self, resource: str, namespace: str | None = None) -> list[dict[str, Any]]:
        items = [
            copy.deepcopy(o)
            for (res, ns, _), o in self._objects.items()
            if res == resource and (namespace is None or ns == namespace)
        ]
        items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        return items

    # writes ----------------------------------------------------------------
    def _bump(self, obj: dict[str, Any]) -> int:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        return self._rv

    def create(self, resource: str, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        key = (resource, meta.get("namespace", ""), meta["name"])
        if key in self._objects:
            raise already_exists(resource, meta["name"])
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", now_rfc3339())
        self._bump(obj)
        self._objects[key] = obj
        self._emit(resource, "ADDED", obj)
        return copy.deepcopy(obj)

    def dry_create(self, resource: str, obj: dict[str, Any]) -> dict[str, Any]:
        """What create() would store, without storing it (dryRun=All): the same AlreadyExists,
        a uid and creationTimestamp, but no resourceVersion, since nothing was written."""
        meta = obj["metadata"]
        if (resource, meta.get("namespace", ""), meta["name"]) in self._objects:
            raise already_exists(resource, meta["name"])
        out = copy.deepcopy(obj)
        out["metadata"].pop("resourceVersion", None)
        out["metadata"].setdefault("uid", str(uuid.uuid4()))
        out["metadata"].setdefault("creationTimestamp", now_rfc3339())
        return out

    def update(self, resource: str, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        key = (resource, meta.get("namespace", ""), meta["name"])
        if key not in self._objects:
            raise not_found(resource, meta["name"])
        prev = self._objects[key]
        self._bump(obj)
        self._objects[key] = obj
        self._emit(resource, "MODIFIED", obj, prev)
        return copy.deepcopy(obj)

    def delete(self, resource: str, namespace: str, name: str) -> dict[str, Any]:
        obj = self._objects.pop((resource, namespace, name), None)
        if obj is None:
            raise not_found(resource, name)
        # A DELETED event carries the rv of the deletion, as etcd3 watch does.
        self._bump(obj)
        self._emit(resource, "DELETED", obj)
        return copy.deepcopy(obj)

    # watch -----------------------------------------------------------------
    def _emit(self, resource: str, type_: str, obj: dict[str, Any], prev: dict[str, Any] | None = None) -> None:
        event = Event(self._rv, resource, type_, copy.deepcopy(obj), copy.deepcopy(prev) if prev is not None else None)
        self._history.append(event)
        for sub in list(self._subs):
            if sub.resource == resource and (sub.namespace is None or sub.namespace == obj["metadata"].get("namespace", "")):
                sub.queue.put_nowait(event)

    def subscribe(self, resource: str, namespace: str | None, since_rv: int | None) -> tuple[Subscription, builtins.list[Event]]:  # Store.list shadows the builtin here
        """Register a watcher; returns it plus the replayed events after since_rv (None: no replay)."""
        replay: builtins.list[Event] = []
        if since_rv is not None and since_rv < self._rv:
            oldest = self.oldest_replayable()
            if since_rv < oldest:
                raise gone(since_rv, oldest + 1)
            replay = [
                e
                for e in self._history
                if e.rv > since_rv
                and e.resource == resource
                and (namespace is None or e.obj["metadata"].get("namespace", "") == namespace)
            ]
        sub = Subscription(resource, namespace)
        self._subs.add(sub)
        return sub, replay

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    def close_watches(self) -> None:
        """End every open watch (server stopping or going unreachable)."""
        for sub in list(self._subs):
            sub.queue.put_nowait(None)
