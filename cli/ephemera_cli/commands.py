"""What each subcommand does: one JSON API call or a few, and a line or table for people
(`-o json`: the portal's own JSON objects, unchanged, for scripts)."""

from __future__ import annotations

import argparse
import getpass
import json
import shlex
import sys
import uuid
from typing import Any
from urllib.parse import quote

from ephemera_cli import config
from ephemera_cli.client import Portal, PortalError
from ephemera_cli.errors import CliError, Exit
from ephemera_cli.output import age, clean, parse_minutes, parse_seconds, shorten, table, target, until
from ephemera_cli.terminal import attach
from ephemera_cli.waiting import Waiter, approvals_line, note, session_gone

# The debug request's API fields as `kubectl ephemera debug` calls them, for the portal's 400s.
DEBUG_FLAGS = {"namespace": "-n", "pod": "POD", "container": "--target", "node": "node/NAME", "image": "--image",
               "profile": "--profile", "reason": "--reason", "ticket": "--ticket", "duration_minutes": "--duration",
               "copy_of": "POD", "set_image": "--set-image", "command": "--target-command",
               "share_processes": "--share-processes", "same_node": "--same-node"}

# Any valid UUID no request has: the cheapest authenticated call (404 = the token works).
_NO_SUCH_REQUEST = "00000000-0000-0000-0000-000000000000"


def object_id(text: str, what: str) -> str:
    """IDs are UUIDs (the API's <uuid:pk>); checking here keeps odd input out of URL paths."""
    try:
        return str(uuid.UUID(text.strip()))
    except ValueError:
        raise CliError(f"{text!r} is not a {what} id (a UUID, as kubectl ephemera get {what}s shows)", Exit.USAGE) from None


def dump(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")


# --- login -------------------------------------------------------------------------------------


async def login(args: argparse.Namespace) -> Exit:
    url = config.normalize_url(args.url, allow_http=args.allow_http)
    token = (args.token or "").strip()
    if not token:
        if sys.stdin.isatty():
            # Prompted, not an argument: a token typed on the command line stays in shell history.
            token = getpass.getpass("API token (from the portal: manage.py create_api_token USER): ").strip()
        else:
            token = sys.stdin.readline().strip()
    if not token:
        raise CliError("no token given; pass --token TOKEN, type it at the prompt, or pipe it in", Exit.USAGE)
    cfg = config.Config(url=url, token=token)
    async with Portal(cfg) as api:
        try:
            await api.get(f"/api/v1/requests/{_NO_SUCH_REQUEST}")
        except PortalError as exc:
            # The portal's own 404 is JSON; any web server says 404 to a path it doesn't know.
            if exc.status != 404 or not isinstance(exc.body, dict) or "detail" not in exc.body:
                raise
        else:
            raise CliError(f"{url} doesn't answer like an Ephemera portal; check the URL", Exit.USAGE)
    path = config.save(cfg)
    print(f"Logged in to {url}; the token is in {path} (readable only by you).")
    return Exit.OK


# --- debug and attach ----------------------------------------------------------------------------


def _debug_body(args: argparse.Namespace) -> dict[str, Any]:
    kind, _, name = args.target_object.rpartition("/")
    body: dict[str, Any] = {
        "image": args.image,
        "profile": args.profile,
        "reason": args.reason,
        "ticket": args.ticket or "",
        "duration_minutes": parse_minutes(args.duration),
    }
    if not name:
        raise CliError("name the pod (POD or pod/POD) or the node (node/NAME) to debug", Exit.USAGE)
    if kind in ("node", "nodes", "no"):
        if args.target or args.namespace:
            raise CliError("--target and -n name a container in a pod; a node request has neither", Exit.USAGE)
        return {**body, "node": name}
    if kind not in ("", "pod", "pods", "po"):
        raise CliError(f"can't debug {kind}/{name}: give POD, pod/POD or node/NAME", Exit.USAGE)
    target_fields = {"namespace": args.namespace or "default", "container": args.target or ""}
    copy_to = getattr(args, "copy_to", None)
    if copy_to is None:
        if getattr(args, "set_image", None) or getattr(args, "target_command", None) or getattr(args, "same_node", False):
            raise CliError("--set-image, --target-command and --same-node go with --copy-to", Exit.USAGE)
        return {**body, **target_fields, "pod": name}
    copy: dict[str, Any] = {**body, **target_fields, "copy_of": name}
    if args.share_processes is not None:
        copy["share_processes"] = args.share_processes
    if args.same_node:
        copy["same_node"] = True
    if args.set_image:
        images: dict[str, str] = {}
        for part in args.set_image.split(","):
            container, eq, image = part.partition("=")
            if not eq or not container.strip() or not image.strip():
                raise CliError(f"--set-image: {part!r} is not container=image", Exit.USAGE)
            images[container.strip()] = image.strip()
        copy["set_image"] = images
    if args.target_command:
        try:
            copy["command"] = shlex.split(args.target_command)
        except ValueError as exc:
            raise CliError(f"--target-command: {exc}", Exit.USAGE) from None
    return copy


async def debug(args: argparse.Namespace) -> Exit:
    body = _debug_body(args)
    timeout = parse_seconds(args.wait_timeout) if args.wait_timeout else None
    async with Portal(config.load()) as api:
        preview = (await api.post("/api/v1/requests/preview", body, DEBUG_FLAGS))["policy"]
        note(f"Policy: {clean(preview.get('summary') or preview.get('rule') or '')}")
        req = await api.post("/api/v1/requests", body, DEBUG_FLAGS)
        rid = req["id"]
        if req.get("status") == "approved":
            note(f"Request {rid}: approved by policy (rule {clean(req['policy']['rule'])}).")
        else:
            note(f"Request {rid}: {req.get('status')}, {approvals_line(req)}.")
        if args.no_wait:
            if args.output == "json":
                dump(req)
            else:
                print(rid)
            return Exit.OK
        session = await Waiter(api, rid, timeout=timeout, withdraw_on_interrupt=True).session()
        note(f"Session {session['id']} is running.")
        return await attach(api, session)


async def attach_cmd(args: argparse.Namespace) -> Exit:
    """`attach ID`: a session's id, or a request's (waits for its session, as debug does)."""
    oid = object_id(args.id, "session")
    timeout = parse_seconds(args.wait_timeout) if args.wait_timeout else None
    async with Portal(config.load()) as api:
        try:
            session = await api.get(f"/api/v1/sessions/{oid}")
        except PortalError as exc:
            if exc.status != 404:
                raise
            try:
                req = await api.get(f"/api/v1/requests/{oid}")
            except PortalError as exc2:
                if exc2.status == 404:
                    raise CliError(f"no session or request {oid} that you can see; list them: kubectl ephemera get sessions") from None
                raise
            session = req.get("session") or {"status": "provisioning"}
            if session.get("status") != "running":
                session = await Waiter(api, oid, timeout=timeout, withdraw_on_interrupt=False).session()
        if session.get("status") == "provisioning":
            session = await Waiter(api, str(session["request_id"]), timeout=timeout, withdraw_on_interrupt=False).session()
        if session.get("status") != "running":
            raise session_gone(session)
        return await attach(api, session)


# --- get ---------------------------------------------------------------------------------------


def _approvals(req: dict[str, Any]) -> str:
    policy = req.get("policy") or {}
    return f"{policy.get('approvals', 0)}/{policy.get('approvals_required', req.get('approvals_required', '?'))}"


async def get(args: argparse.Namespace) -> Exit:
    if args.resource.startswith("session"):
        return await _get_sessions(args)
    async with Portal(config.load()) as api:
        if args.id:
            rows = [await api.get(f"/api/v1/requests/{object_id(args.id, 'request')}")]
        else:
            rows = await api.get("/api/v1/requests")
    if args.status:
        rows = [r for r in rows if r.get("status") == args.status]
    if args.output == "json":
        dump(rows[0] if args.id else rows)
        return Exit.OK
    table(
        [[r["id"], r.get("status", ""), r.get("requester", ""), target(r), r.get("profile", ""), _approvals(r),
          age(r.get("created_at")), shorten(r.get("reason"))] for r in rows],
        ["ID", "STATUS", "REQUESTER", "TARGET", "PROFILE", "APPROVALS", "AGE", "REASON"],
    )
    return Exit.OK


async def _get_sessions(args: argparse.Namespace) -> Exit:
    """The portal's session list (its scope: yours, those you approve for, all for auditors);
    `running` ones unless --status says otherwise."""
    async with Portal(config.load()) as api:
        if args.id:
            one = await api.get(f"/api/v1/sessions/{object_id(args.id, 'session')}")
            if args.output == "json":
                dump(one)
                return Exit.OK
            rows = [{**one, "target": f"{one.get('namespace', '')}/{one.get('pod', '')}", "requester": "-", "watchers": []}]
        else:
            query = "&".join(f"{k}={quote(v)}" for k, v in (("status", args.status), ("namespace", args.namespace)) if v)
            rows = await api.get("/api/v1/sessions" + (f"?{query}" if query else ""))
            if args.output == "json":
                dump(rows)
                return Exit.OK
    table(
        [[r["id"], r.get("status", ""), r.get("requester", ""), r.get("target", ""),
          until(r.get("expires_at")) if r.get("status") == "running" else "-",
          ",".join(r.get("watchers") or []) or "-", r.get("request_id", "")] for r in rows],
        ["SESSION", "STATUS", "REQUESTER", "TARGET", "ENDS", "WATCHERS", "REQUEST"],
    )
    return Exit.OK


# --- decisions ---------------------------------------------------------------------------------


async def _decide(args: argparse.Namespace, verdict: str) -> Exit:
    """approve/deny ID: a request's id, or else an extension's (approvers decide both)."""
    oid = object_id(args.id, "request")
    body = {"comment": args.message or ""}
    async with Portal(config.load()) as api:
        try:
            req = await api.post(f"/api/v1/requests/{oid}/{verdict}", body)
        except PortalError as exc:
            if exc.status != 404:
                raise
            try:
                ext = await api.post(f"/api/v1/extensions/{oid}/{verdict}", body)
            except PortalError as exc2:
                if exc2.status == 404:
                    raise CliError(f"no request or extension {oid} that you can see; list them: kubectl ephemera get requests") from None
                raise
            if args.output == "json":
                dump(ext)
            else:
                print(f"Extension {ext['id']} {ext.get('status')}: {ext.get('minutes')} more minutes for session {ext.get('session_id')}.")
            return Exit.OK
    if args.output == "json":
        dump(req)
    else:
        print(f"Request {req['id']} is {req.get('status')} ({_approvals(req)} approvals).")
    return Exit.OK


async def approve(args: argparse.Namespace) -> Exit:
    return await _decide(args, "approve")


async def deny(args: argparse.Namespace) -> Exit:
    return await _decide(args, "deny")


# --- sessions ----------------------------------------------------------------------------------


async def end(args: argparse.Namespace) -> Exit:
    sid = object_id(args.session, "session")
    async with Portal(config.load()) as api:
        session = await api.post(f"/api/v1/sessions/{sid}/end", {"reason": args.reason or ""})
    if args.output == "json":
        dump(session)
    else:
        print(f"Session {session['id']} is {session.get('status')}; its debug shell is being stopped.")
    return Exit.OK


async def extend(args: argparse.Namespace) -> Exit:
    sid = object_id(args.session, "session")
    minutes = parse_minutes(args.duration)
    async with Portal(config.load()) as api:
        ext = await api.post(f"/api/v1/sessions/{sid}/extend", {"minutes": minutes, "reason": args.reason},
                             {"minutes": "DURATION", "reason": "--reason"})
    if args.output == "json":
        dump(ext)
    else:
        print(f"Asked for {minutes} more minutes on session {sid}: extension {ext['id']} is {ext.get('status')} "
              f"(an approver decides: kubectl ephemera approve {ext['id']}).")
    return Exit.OK
