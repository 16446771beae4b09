"""Streaming watch responses (newline-delimited JSON WatchEvents), including watch-list."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from kubesim import tables
from kubesim.errors import ApiError, bad_request
from kubesim.store import Event, Store

KINDS = {"pods": "Pod", "nodes": "Node", "namespaces": "Namespace"}
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true")


class WatchWriter:
    def __init__(self, resp: web.StreamResponse, resource: str, table_mode: bool, include: str) -> None:
        self.resp = resp
        self.resource = resource
        self.table_mode = table_mode
        self.include = include
        self._columns_sent = False

    async def send(self, type_: str, obj: dict[str, Any]) -> None:
        if self.table_mode and type_ in ("ADDED", "MODIFIED", "DELETED"):
            # Columns only in the first event, like the apiserver's watch encoder.
            obj = tables.table(
                self.resource,
                [obj],
                obj["metadata"].get("resourceVersion", ""),
                self.include,
                with_columns=not self._columns_sent,
            )
            self._columns_sent = True
        line = json.dumps({"type": type_, "object": obj}, separators=(",", ":")) + "\n"
        await self.resp.write(line.encode())

    async def bookmark(self, rv: int, initial_end: bool = False) -> None:
        meta: dict[str, Any] = {"resourceVersion": str(rv), "creationTimestamp": None}
        if initial_end:
            meta["annotations"] = {INITIAL_EVENTS_END: "true"}
        kind = KINDS[self.resource]
        # Bookmarks are never Tables: clients only read their resourceVersion.
        line = json.dumps({"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": "v1", "metadata": meta}})
        await self.resp.write((line + "\n").encode())


async def _send_filtered(writer: WatchWriter, event: Event, match: Callable[[dict[str, Any]], bool]) -> None:
    """Like the watch cache: an update that moves an object in or out of the selection is ADDED/DELETED."""
    now = match(event.obj)
    if event.type == "MODIFIED" and event.prev is not None:
        before = match(event.prev)
        if now and before:
            await writer.send("MODIFIED", event.obj)
        elif now:
            await writer.send("ADDED", event.obj)
        elif before:
            await writer.send("DELETED", event.obj)
    elif now:
        await writer.send(event.type, event.obj)


async def serve(
    request: web.Request,
    store: Store,
    resource: str,
    namespace: str | None,
    match: Callable[[dict[str, Any]], bool],
) -> web.StreamResponse:
    q = request.query
    rv_param = q.get("resourceVersion", "")
    send_initial = _truthy(q.get("sendInitialEvents"))
    bookmarks = _truthy(q.get("allowWatchBookmarks"))
    if send_initial and q.get("resourceVersionMatch") != "NotOlderThan":
        raise ApiError(
            422,
            "Invalid",
            "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
        )
    try:
        timeout = float(q["timeoutSeconds"]) if q.get("timeoutSeconds") else None
        since = int(rv_param) if rv_param not in ("", "0") else None
    except ValueError as e:
        raise bad_request(f"invalid watch parameter: {e}") from e
    table_mode = tables.wants_table(request.headers.get("Accept", "")) and resource in tables.COLUMNS
    include = q.get("includeObject", "Metadata")

    initial: list[dict[str, Any]] = []
    gone: ApiError | None = None
    replay: list[Event] = []
    if send_initial or since is None:
        # Synthetic ADDED events for the current state (rv unset/0, or a watch-list request).
        initial = [o for o in store.list(resource, namespace) if match(o)]
        sub, _ = store.subscribe(resource, namespace, None)
    else:
        try:
            sub, replay = store.subscribe(resource, namespace, since)
        except ApiError as e:
            gone = e
            sub = None  # type: ignore[assignment]
    start_rv = store.resource_version

    resp = web.StreamResponse(status=200)
    resp.content_type = "application/json"
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    writer = WatchWriter(resp, resource, table_mode, include)
    if gone is not None:
        # The apiserver reports an expired rv as an ERROR event inside a 200 stream.
        await resp.write((json.dumps({"type": "ERROR", "object": gone.status()}) + "\n").encode())
        await resp.write_eof()
        return resp
    assert sub is not None  # only a 410 leaves it unset, and that returned above

    deadline = time.monotonic() + timeout if timeout else None
    try:
        for obj in initial:
            await writer.send("ADDED", obj)
        if send_initial:
            await writer.bookmark(start_rv, initial_end=True)
        for event in replay:
            await _send_filtered(writer, event, match)
        last_bookmark = time.monotonic()
        while True:
            wait = 1.0
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    break
            transport = request.transport
            if transport is None or transport.is_closing():
                break
            try:
                queued = await asyncio.wait_for(sub.queue.get(), wait)
            except TimeoutError:
                # Periodic bookmarks let clients resume without a relist, as the watch cache does.
                if bookmarks and time.monotonic() - last_bookmark > 30:
                    await writer.bookmark(store.resource_version)
                    last_bookmark = time.monotonic()
                continue
            if queued is None:  # server stopping or going unreachable
                break
            event = queued
            if event.rv <= start_rv and not replay and since is None:
                continue
            await _send_filtered(writer, event, match)
    except ConnectionResetError:
        # The client hung up mid-write: a normal end for a watch.
        return resp
    finally:
        store.unsubscribe(sub)
    try:
        await resp.write_eof()
    except ConnectionResetError:
        pass
    return resp
