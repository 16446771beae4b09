"""The kubesim API server: an aiohttp app speaking enough of kube-apiserver for kubectl."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import ssl
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from kubesim import admin, discovery, kubeconfig, protobuf, routing, streams, tls
from kubesim.audit import AuditLog
from kubesim.auth import Authenticator, authorize
from kubesim.cluster import Cluster, RuntimeFactory
from kubesim.errors import ApiError, internal, path_not_found
from kubesim.faults import Faults
from kubesim.handlers import Handlers, json_response
from kubesim.state import State, User, default_state
from kubesim.store import Store

log = logging.getLogger("kubesim")

LOOPBACK = "127.0.0.1"
ADMIN_USER = "kubernetes-admin"


class KubeSim:
    def __init__(
        self,
        *,
        kubeconfig_path: Path | str,
        host: str = LOOPBACK,
        port: int = 0,
        state: State | None = None,
        audit_log: Path | str | None = None,
        plain_http: bool = False,
        runtime_factory: RuntimeFactory | None = None,
        pull_delay: float = 0.0,
        history: int = 1000,
    ) -> None:
        if host != LOOPBACK:
            # A debugging cluster that runs arbitrary local processes must never be reachable from outside.
            raise ValueError(f"kubesim only listens on {LOOPBACK}, not {host!r}")
        self.host = host
        self.port = port
        self.kubeconfig_path = Path(kubeconfig_path)
        self.ca_file = self.kubeconfig_path.with_name(self.kubeconfig_path.name + ".ca.crt")
        self.state = state or default_state()
        self.plain_http = plain_http
        self.token = secrets.token_urlsafe(32)
        self.store = Store(history)
        self.cluster = Cluster(self.store, runtime_factory, pull_delay)
        self.handlers = Handlers(self.cluster)
        self.faults = Faults()
        admin_user = User(ADMIN_USER, self.token)
        self.auth = Authenticator([admin_user, *self.state.users], anonymous=admin_user if plain_http else None)
        self.audit = AuditLog(audit_log) if audit_log else None
        self._ssl: ssl.SSLContext | None = None
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self.url = ""

    # lifecycle -------------------------------------------------------------
    async def start(self) -> None:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # handler_cancellation: a watch whose client went away is cancelled instead of lingering.
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, handler_cancellation=True, shutdown_timeout=5.0)
        await self._runner.setup()
        ca_pem: bytes | None = None
        if not self.plain_http:
            certs = tls.generate()
            ca_pem = certs.ca_pem
            self._ssl = tls.server_context(certs, self.kubeconfig_path.parent)
            self.ca_file.write_bytes(certs.ca_pem)
        self._site = self._new_site()
        await self._site.start()
        sockets = self._site._server.sockets if self._site._server else []  # type: ignore[union-attr,attr-defined]
        self.port = sockets[0].getsockname()[1]
        scheme = "http" if self.plain_http else "https"
        self.url = f"{scheme}://{self.host}:{self.port}"
        await self.cluster.start(self.state)
        kubeconfig.write(self.kubeconfig_path, self.url, self.token, ca_pem)

    def _new_site(self) -> web.TCPSite:
        assert self._runner is not None
        return web.TCPSite(self._runner, self.host, self.port, ssl_context=self._ssl, reuse_address=True)

    async def stop(self) -> None:
        self.store.close_watches()
        await self.cluster.shutdown()
        if self._runner is not None:
            await self._runner.cleanup()
        if self.audit is not None:
            self.audit.close()

    def spawn_unreachable(self, seconds: float) -> None:
        self.cluster.spawn(self._unreachable(seconds), "unreachable")

    async def _unreachable(self, seconds: float) -> None:
        # Drop what is open first: stopping the site can wait on open connections (an attach
        # websocket), which would leave that stream alive through the "outage".
        self.store.close_watches()
        if self.cluster.runtime is not None:
            self.cluster.runtime.cut_streams()
        server = self._runner.server if self._runner else None
        for transport in list(getattr(server, "_connections", {}).values()):
            transport.abort()
        if self._site is not None:
            await self._site.stop()
            self._site = None
        await asyncio.sleep(seconds)
        self._site = self._new_site()
        await self._site.start()

    # requests --------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        received = datetime.now(UTC)
        info: routing.RequestInfo | None = None
        username = ""
        code = 500
        body: Any = None
        try:
            if request.method in ("POST", "PUT", "PATCH", "DELETE") and request.can_read_body:
                raw = await request.read()
                try:
                    if request.content_type == protobuf.CONTENT_TYPE:
                        body = protobuf.decode_pod(raw)
                    else:
                        body = json.loads(raw) if raw else None
                except (ValueError, ApiError):
                    body = raw.decode("utf-8", "replace")
            user = self.auth.authenticate(request)
            username = user.name
            if request.path.startswith("/_kubesim/"):
                resp = await admin.handle(request, self)
            else:
                info = routing.parse(request)
                authorize(user, info, request.method)
                await self.faults.apply(request.method, request.path)
                resp = await self._route(request, info)
            code = resp.status
            return resp
        except ApiError as e:
            code = e.code
            return e.response()
        except asyncio.CancelledError:
            code = 499  # client went away (nginx's convention; only shows in the audit log)
            raise
        except (ConnectionResetError, web.HTTPException):
            raise
        except Exception as e:  # noqa: BLE001 - any bug becomes a 500 Status, as in the apiserver
            log.exception("kubesim: error serving %s %s", request.method, request.path)
            err = internal(str(e))
            code = err.code
            return err.response()
        finally:
            if self.audit is not None:
                self.audit.record(request, info, username, code, received, body)

    async def _route(self, request: web.Request, info: routing.RequestInfo) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        if not info.is_resource:
            if request.method != "GET":
                raise path_not_found()
            if path == "/version":
                return json_response(discovery.VERSION)
            if path == "/api":
                return json_response(discovery.api_versions(f"{self.host}:{self.port}"))
            if path == "/api/v1":
                return json_response(discovery.core_v1_resources())
            if path == "/apis":
                return json_response(discovery.api_groups())
            if path in ("/healthz", "/livez", "/readyz"):
                return web.Response(text="ok")
            raise path_not_found()
        if info.resource == "pods" and info.subresource in ("attach", "exec"):
            return await streams.attach_or_exec(request, info, self.cluster)
        if info.resource == "pods" and info.subresource == "log":
            return await streams.logs(request, info, self.cluster)
        return await self.handlers.dispatch(request, info)
