"""Test-only endpoints under /_kubesim/ (authenticated, absent from discovery)."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from kubesim.errors import bad_request, method_not_allowed, path_not_found
from kubesim.faults import parse_fault

if TYPE_CHECKING:
    from kubesim.server import KubeSim


def _ok(body: dict[str, Any]) -> web.Response:
    return web.Response(text=json.dumps(body), content_type="application/json")


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError as e:
        raise bad_request(f"error decoding JSON: {e}") from e
    if not isinstance(body, dict):
        raise bad_request("body must be a JSON object")
    return body


async def handle(request: web.Request, sim: KubeSim) -> web.StreamResponse:
    action = request.path[len("/_kubesim/") :].strip("/")
    method = request.method
    if action == "healthz":
        return web.Response(text="ok")
    if action == "faults":
        if method == "POST":
            sim.faults.add(parse_fault(await _body(request)))
            return _ok({"faults": sim.faults.describe()})
        if method == "DELETE":
            sim.faults.clear()
            return _ok({"faults": []})
        if method == "GET":
            return _ok({"faults": sim.faults.describe()})
        raise method_not_allowed()
    if action == "cut-streams":
        if method != "POST":
            raise method_not_allowed()
        body = await _body(request)
        runtime = sim.cluster.runtime
        cut = runtime.cut_streams(body.get("namespace"), body.get("pod"), body.get("container")) if runtime else 0
        return _ok({"cut": cut})
    if action == "unreachable":
        if method != "POST":
            raise method_not_allowed()
        seconds = float((await _body(request)).get("seconds", 5))
        # Answer first, then drop off the network (this connection included).
        asyncio.get_running_loop().call_later(0.05, lambda: sim.spawn_unreachable(seconds))
        return _ok({"unreachable": seconds})
    raise path_not_found()
