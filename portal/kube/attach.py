"""Async client for the attach (and exec) websocket of a pod's container.

The terminal bridge needs an async stream it can stop reading (flow control pushes back
through TCP to the container's pty), which the blocking `kubernetes.stream` client can't
give, and `kubernetes_asyncio` only speaks v4. So this speaks the channel protocol itself
over aiohttp: v5.channel.k8s.io preferred, v4 as the fallback. Headers (the bearer token)
are never logged or put into an error message.
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import json
import logging
import weakref
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp

from portal.kube.config import KubeConnection
from portal.kube.useragent import current as current_user_agent

log = logging.getLogger(__name__)

# asyncio gives every TLS connection a zero-filled read buffer of SSLProtocol.max_size
# (256 KiB): with one TLS attach stream per open terminal that alone was most of an idle
# terminal's memory. One TLS record is at most 16 KiB, so 16 KiB reads lose little: an
# aiohttp TLS websocket flood read 322-435 MB/s with them vs 408-431 MB/s with 64 KiB, far
# above what a terminal relays; idle memory per terminal (bench/terminal.py --only idle,
# 100 terminals) 184 KiB with 64 KiB reads, 137 KiB with 16 KiB. Process-wide, set once.
_TLS_READ_BUFFER = 16 * 1024
if getattr(asyncio.sslproto.SSLProtocol, "max_size", 0) > _TLS_READ_BUFFER:
    asyncio.sslproto.SSLProtocol.max_size = _TLS_READ_BUFFER

PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, STATUS, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
# Big outputs arrive as big frames; the apiserver itself has no frame limit.
_MAX_FRAME = 16 * 1024 * 1024


class AttachError(Exception):
    """The stream cannot be opened or broke; `message` is safe to show a user."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retryable = retryable


@dataclass
class StreamEvent:
    """One upstream message: output bytes (channel 1/2), or the Status object (channel 3)."""

    channel: int
    data: bytes
    status: dict[str, Any] | None = None


@dataclass
class ChannelStream:
    """An open attach/exec stream. Not thread-safe: use from one event loop."""

    ws: aiohttp.ClientWebSocketResponse
    http: _SharedSession = field(repr=False)
    protocol: str
    _closed: bool = False

    @property
    def is_v5(self) -> bool:
        return self.protocol == PROTOCOLS[0]

    async def write(self, data: bytes) -> None:
        if data:
            await self.ws.send_bytes(bytes([STDIN]) + data)

    async def resize(self, cols: int, rows: int) -> None:
        body = json.dumps({"Width": int(cols), "Height": int(rows)}).encode()
        await self.ws.send_bytes(bytes([RESIZE]) + body)

    async def close_stdin(self) -> None:
        """Half-close stdin (v5 only; v4 has no way to do it short of closing the stream)."""
        if self.is_v5:
            await self.ws.send_bytes(bytes([CLOSE, STDIN]))

    async def read(self) -> StreamEvent | None:
        """The next output or status message; None when the stream ended cleanly.

        Raises AttachError when the connection broke.
        """
        while True:
            try:
                msg = await self.ws.receive()
            except (aiohttp.ClientError, OSError) as exc:
                raise AttachError(f"the cluster stream broke: {type(exc).__name__}") from exc
            if msg.type == aiohttp.WSMsgType.BINARY:
                frame: bytes = msg.data
                # An empty first message per channel only announces it.
                if len(frame) <= 1:
                    continue
                channel = frame[0]
                payload = frame[1:]
                if channel == STATUS:
                    try:
                        status = json.loads(payload)
                    except ValueError:
                        status = {"status": "Failure", "message": payload.decode("utf-8", "replace")}
                    return StreamEvent(STATUS, b"", status)
                if channel in (STDOUT, STDERR):
                    return StreamEvent(channel, payload)
                continue  # unknown channel: ignore, as client-go does
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                return None
            if msg.type == aiohttp.WSMsgType.ERROR:
                raise AttachError(f"the cluster stream broke: {type(msg.data).__name__}")
            # TEXT frames are not part of the protocol; PING/PONG are handled by aiohttp.

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self.ws.close()
        finally:
            await self.http.release()


def attach_url(conn: KubeConnection, *, namespace: str, pod: str, container: str) -> str:
    query = urlencode({"container": container, "stdin": "true", "stdout": "true", "tty": "true"})
    return f"{conn.base_url}/api/v1/namespaces/{quote(namespace, safe='')}/pods/{quote(pod, safe='')}/attach?{query}"


def exec_url(
    conn: KubeConnection, *, namespace: str, pod: str, container: str, command: list[str], tty: bool, stdin: bool = True
) -> str:
    params: list[tuple[str, str]] = [("container", container), ("stdout", "true")]
    if stdin:
        params.insert(1, ("stdin", "true"))
    params.append(("tty", "true") if tty else ("stderr", "true"))
    params += [("command", arg) for arg in command]
    return f"{conn.base_url}/api/v1/namespaces/{quote(namespace, safe='')}/pods/{quote(pod, safe='')}/exec?{urlencode(params)}"


async def open_attach(conn: KubeConnection, *, namespace: str, pod: str, container: str, timeout: float = 15.0) -> ChannelStream:
    """Attach to the container's stdin/stdout with a tty, as `kubectl attach -it` does."""
    return await _open(conn, attach_url(conn, namespace=namespace, pod=pod, container=container), timeout=timeout)


async def open_exec(
    conn: KubeConnection, *, namespace: str, pod: str, container: str, command: list[str], tty: bool = True, timeout: float = 15.0
) -> ChannelStream:
    """Run a command in the container (used by tests and the benchmark; the portal attaches)."""
    url = exec_url(conn, namespace=namespace, pod=pod, container=container, command=command, tty=tty)
    return await _open(conn, url, timeout=timeout)


async def run_command(
    conn: KubeConnection, *, namespace: str, pod: str, container: str, command: list[str], timeout: float
) -> tuple[int, bytes]:
    """Run a command without stdin or tty, as `kubectl exec` does; (exit code, stdout+stderr).

    The whole call, handshake included, is bounded by `timeout` (TimeoutError): a hung
    apiserver or kubelet can't hold the caller. -1 means the stream ended without a status
    (the command's container died under it).
    """
    url = exec_url(conn, namespace=namespace, pod=pod, container=container, command=command, tty=False, stdin=False)
    async with asyncio.timeout(timeout):
        stream = await _open(conn, url, timeout=timeout)
        output = bytearray()
        code: int | None = None
        try:
            while (event := await stream.read()) is not None:
                if event.channel == STATUS:
                    code = _exit_code(event.status or {})
                else:
                    output += event.data
        finally:
            await stream.close()
    return (-1 if code is None else code), bytes(output)


def _exit_code(status: dict[str, Any]) -> int:
    """The exit code a Status on channel 3 reports (what client-go's exec does with it)."""
    if status.get("status") == "Success":
        return 0
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message", ""))
            except ValueError:
                break
    raise AttachError(f"the command could not run: {str(status.get('message') or 'unknown error')[:300]}", retryable=False)


# The body of a refused upgrade, for the _open that is waiting on it. A context variable, not a
# closure per session: the trace hook is the shared session's, and it runs in the task of the
# request that got the answer, so each _open sees only its own refusal.
_refused: ContextVar[dict[str, bytes] | None] = ContextVar("ephemera_attach_refused", default=None)


async def _keep_refusal(_session: Any, _ctx: SimpleNamespace, params: aiohttp.TraceRequestEndParams) -> None:
    # aiohttp drops the body of a refused upgrade; the Status message in it is the only
    # useful explanation ("container not running", "pods ... not found"), so read it here.
    box = _refused.get()
    resp = params.response
    if box is None or resp.status < 400:
        return
    try:
        box["body"] = await resp.content.read(64 * 1024)
    except (aiohttp.ClientError, OSError):
        box["body"] = b""


class _SharedSession:
    """One aiohttp ClientSession (and connector) for every open stream of an event loop.

    A session per stream cost each idle terminal ~8.5 KiB (tracemalloc) for a connector and a
    cookie jar it never used. Counted: the last stream to close closes the session, so a loop
    that ends (a test's, a management command's) leaves nothing unclosed, and the next stream
    opens a fresh one. No connection limit: every terminal holds its websocket for hours.
    """

    _by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _SharedSession] = weakref.WeakKeyDictionary()

    def __init__(self) -> None:
        trace = aiohttp.TraceConfig()
        trace.on_request_end.append(_keep_refusal)
        self.client = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            trace_configs=[trace],
            timeout=aiohttp.ClientTimeout(total=None),
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        self.users = 0

    @classmethod
    def acquire(cls) -> _SharedSession:
        loop = asyncio.get_running_loop()
        shared = cls._by_loop.get(loop)
        if shared is None or shared.client.closed:
            shared = cls._by_loop[loop] = cls()
        shared.users += 1
        return shared

    async def release(self) -> None:
        self.users -= 1
        if self.users > 0:
            return
        loop = asyncio.get_running_loop()
        if self._by_loop.get(loop) is self:
            del self._by_loop[loop]
        # Shielded: a caller cancelled while closing must not leave the session half open.
        await asyncio.shield(self.client.close())


async def _open(conn: KubeConnection, url: str, *, timeout: float) -> ChannelStream:
    refused: dict[str, bytes] = {}
    token = _refused.set(refused)
    http = _SharedSession.acquire()
    opened = False
    try:
        # The handshake as a whole is bounded: an apiserver that accepts the connection and
        # never answers the upgrade (a hung kubelet behind it) must not hold a terminal or a stop.
        async with asyncio.timeout(timeout):
            ws = await http.client.ws_connect(
                url,
                headers={**conn.headers, "User-Agent": current_user_agent()},
                protocols=PROTOCOLS,
                ssl=conn.ssl_context if conn.ssl_context is not None else False,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0),
                # Like client-go's pings: keeps idle terminals alive through proxies and notices a
                # dead apiserver connection (no pong) instead of waiting on it forever.
                heartbeat=20.0,
                autoping=True,
                max_msg_size=_MAX_FRAME,
                compress=0,
            )
        opened = True
    except aiohttp.WSServerHandshakeError as exc:
        raise _refusal(exc.status, refused.get("body", b"")) from None
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        log.warning("cannot reach the cluster for attach/exec: %s", type(exc).__name__)
        raise AttachError(f"cannot reach the cluster ({type(exc).__name__})") from None
    finally:
        _refused.reset(token)
        # Also when the caller is cancelled mid-handshake (a terminal closed while its attach
        # was opening): the session's count must come down, or it would never be closed.
        if not opened:
            await http.release()
    protocol = ws.protocol or ""
    if protocol not in PROTOCOLS:
        await ws.close()
        await http.release()
        raise AttachError(f"the cluster chose no supported stream protocol ({protocol or 'none'})", retryable=False)
    return ChannelStream(ws=ws, http=http, protocol=protocol)


def _refusal(status: int, body: bytes) -> AttachError:
    message = ""
    try:
        parsed = json.loads(body) if body else {}
        if isinstance(parsed, dict):
            message = str(parsed.get("message") or "")
    except ValueError:
        message = body[:300].decode("utf-8", "replace").strip()
    if not message:
        message = {401: "unauthorized", 403: "forbidden", 404: "not found"}.get(status, "upgrade refused")
    # 5xx and 429 may pass; 4xx (not found, forbidden, container not running) won't by retrying now.
    retryable = status >= 500 or status == 429
    return AttachError(f"the cluster refused the terminal stream ({status}): {message}", status=status, retryable=retryable)
