"""attach/exec routing: the apiserver's checks before the runtime takes the websocket."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import time
import urllib.error
import urllib.request
from typing import Any

import aiohttp
import pytest

from kubesim.testing import RunningCluster

pytestmark = [pytest.mark.timeout(60)]

PAYMENTS = "/api/v1/namespaces/payments/pods/payments-api-5f7b9c6d4-q8wzt"


def ssl_ctx(cluster: RunningCluster) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cluster.ca_file))


def http(cluster: RunningCluster, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(cluster.url + path, data=data, method=method)  # noqa: S310 - always the cluster\'s own URL
    req.add_header("Authorization", f"Bearer {cluster.token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, context=ssl_ctx(cluster), timeout=10) as resp:  # noqa: S310
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


async def ws_exec(cluster: RunningCluster, path: str, protocols: list[str], headers: dict[str, str]) -> tuple[str, bytes, Any]:
    out = b""
    status: Any = None
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(
            cluster.url.replace("https", "wss") + path, protocols=protocols, headers=headers, ssl=ssl_ctx(cluster)
        ) as ws:
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.BINARY or len(msg.data) < 2:
                    continue
                if msg.data[0] == 1:
                    out += msg.data[1:]
                elif msg.data[0] == 3:
                    status = json.loads(msg.data[1:])
            return ws.protocol or "", out, status


def test_exec_with_the_token_as_a_websocket_subprotocol(kubesim_session_cluster: RunningCluster) -> None:
    token = base64.urlsafe_b64encode(kubesim_session_cluster.token.encode()).decode().rstrip("=")
    path = f"{PAYMENTS}/exec?command=sh&command=-c&command=echo+hi&stdout=true&stderr=true"
    protocol, out, status = asyncio.run(
        ws_exec(kubesim_session_cluster, path, ["v5.channel.k8s.io", f"base64url.bearer.authorization.k8s.io.{token}"], {})
    )
    assert protocol == "v5.channel.k8s.io"
    assert out == b"hi\n"  # the default-container annotation picked `api`
    assert status == {"metadata": {}, "status": "Success"}


def test_exec_without_credentials_is_401(kubesim_session_cluster: RunningCluster) -> None:
    path = f"{PAYMENTS}/exec?command=true&stdout=true"
    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        asyncio.run(ws_exec(kubesim_session_cluster, path, ["v5.channel.k8s.io"], {}))
    assert err.value.status == 401


def test_stream_preconditions(kubesim_cluster: RunningCluster) -> None:
    code, status = http(kubesim_cluster, "GET", "/api/v1/namespaces/default/pods/nope/exec?command=true&stdout=true")
    assert (code, status["message"]) == (404, 'pods "nope" not found')
    code, status = http(kubesim_cluster, "GET", f"{PAYMENTS}/exec?command=true&stdout=true&container=ghost")
    assert (code, status["message"]) == (400, "container ghost is not valid for pod payments-api-5f7b9c6d4-q8wzt")
    code, status = http(kubesim_cluster, "GET", f"{PAYMENTS}/exec?stdout=true")
    assert (code, status["message"]) == (400, "you must specify at least 1 command")

    pod = {
        "metadata": {"name": "two"},
        "spec": {
            "containers": [
                {"name": "a", "image": "busybox", "command": ["sleep", "60"]},
                {"name": "b", "image": "registry.example.com/does-not-exist:1"},
            ]
        },
    }
    assert http(kubesim_cluster, "POST", "/api/v1/namespaces/default/pods", pod)[0] == 201
    code, status = http(kubesim_cluster, "GET", "/api/v1/namespaces/default/pods/two/attach?stdout=true")
    assert (code, status["message"]) == (400, "a container name must be specified for pod two, choose one of: [a b]")
    deadline = time.monotonic() + 10
    while True:  # `b` never pulls, so it never runs
        code, status = http(kubesim_cluster, "GET", "/api/v1/namespaces/default/pods/two/attach?stdout=true&container=b")
        if code == 400 or time.monotonic() > deadline:
            break
    assert (code, status["message"]) == (400, 'container not found ("b")')
    result = kubesim_cluster.kubectl("exec", "two", "-c", "b", "--", "true")
    assert result.returncode == 1
    assert 'container not found ("b")' in result.stderr


def test_cut_streams_drops_an_open_attach(kubesim_cluster: RunningCluster) -> None:
    async def scenario() -> tuple[int, aiohttp.WSMsgType]:
        path = f"{PAYMENTS}/attach?container=api&stdout=true"
        headers = {"Authorization": f"Bearer {kubesim_cluster.token}"}
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(
                kubesim_cluster.url.replace("https", "wss") + path,
                protocols=["v5.channel.k8s.io"],
                headers=headers,
                ssl=ssl_ctx(kubesim_cluster),
            ) as ws:
                await asyncio.sleep(0.3)
                loop = asyncio.get_running_loop()
                cut = await loop.run_in_executor(None, lambda: kubesim_cluster.faults.cut_streams(namespace="payments"))
                while True:
                    msg = await asyncio.wait_for(ws.receive(), 10)
                    if msg.type != aiohttp.WSMsgType.BINARY:
                        return cut, msg.type

    cut, last = asyncio.run(scenario())
    assert cut == 1
    assert last in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
    # The container itself keeps running.
    code, pod = http(kubesim_cluster, "GET", PAYMENTS)
    assert all("running" in s["state"] for s in pod["status"]["containerStatuses"])
