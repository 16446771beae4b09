"""portal.kube.attach against kubesim's real apiserver: protocol choice and clear refusals."""

from __future__ import annotations

import asyncio

import pytest

from portal.kube.attach import PROTOCOLS, AttachError, open_attach, open_exec
from portal.kube.config import load_connection

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


async def test_it_prefers_v5_and_runs_a_command(term_kube, term_session):
    stream = await open_exec(
        load_connection(), namespace="default", pod=term_session.pod, container=term_session.container_name,
        command=["sh", "-c", "echo from-exec"], tty=False,
    )
    try:
        assert stream.protocol == PROTOCOLS[0]
        out = b""
        while (event := await stream.read()) is not None:
            out += event.data
            if event.status is not None:
                assert event.status["status"] == "Success"
                break
        assert b"from-exec" in out
    finally:
        await stream.close()


async def test_it_explains_a_missing_pod(term_kube):
    with pytest.raises(AttachError) as err:
        await open_attach(load_connection(), namespace="default", pod="no-such-pod", container="c")
    assert err.value.status == 404 and "not found" in err.value.message and not err.value.retryable


async def test_it_explains_an_unknown_container(term_kube, term_session):
    with pytest.raises(AttachError) as err:
        await open_attach(load_connection(), namespace="default", pod=term_session.pod, container="nope")
    assert err.value.status == 400 and "nope" in err.value.message


async def test_it_never_puts_the_token_in_an_error(term_kube):
    conn = load_connection()
    token = conn.headers["Authorization"].split()[-1]
    with pytest.raises(AttachError) as err:
        await open_attach(conn, namespace="default", pod="no-such-pod", container="c")
    assert token not in str(err.value) and token not in repr(conn)


async def test_a_terminal_closed_while_its_attach_opens_leaves_no_unclosed_session(term_kube, term_session):
    import asyncio
    import gc

    problems: list[str] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: problems.append(str(context.get("message"))))
    term_kube.faults.add(path=f"/pods/{term_session.pod}/attach", delay=5)
    try:
        opening = asyncio.create_task(open_attach(
            load_connection(), namespace="default", pod=term_session.pod, container=term_session.container_name))
        await asyncio.sleep(0.5)  # the handshake is waiting on the cluster now
        opening.cancel()
        with pytest.raises(asyncio.CancelledError):
            await opening
        del opening
        gc.collect()
        await asyncio.sleep(0.1)
    finally:
        term_kube.faults.clear()
        loop.set_exception_handler(None)
    assert not [p for p in problems if "Unclosed" in p], problems


async def test_a_hung_handshake_is_bounded(term_kube, term_session):
    import time

    term_kube.faults.add(path=f"/pods/{term_session.pod}/attach", delay=10)
    started = time.monotonic()
    try:
        with pytest.raises(AttachError) as err:
            await open_attach(load_connection(), namespace="default", pod=term_session.pod,
                              container=term_session.container_name, timeout=1.0)
    finally:
        term_kube.faults.clear()
    assert time.monotonic() - started < 3 and "cannot reach the cluster" in err.value.message


async def test_streams_of_a_loop_share_one_client_closed_with_the_last(term_kube, term_session):
    from portal.kube.attach import _SharedSession

    conn = load_connection()
    args = {"namespace": "default", "pod": term_session.pod, "container": term_session.container_name}
    first = await open_exec(conn, command=["sh", "-c", "sleep 5"], tty=False, **args)
    second = await open_exec(conn, command=["sh", "-c", "sleep 5"], tty=False, **args)
    assert first.http is second.http and first.http.users == 2
    client = first.http.client
    await first.close()
    assert not client.closed
    await second.close()
    assert client.closed
    third = await open_exec(conn, command=["true"], tty=False, **args)
    try:
        assert third.http.client is not client and not third.http.client.closed
    finally:
        await third.close()
    assert asyncio.get_running_loop() not in _SharedSession._by_loop


async def test_refusals_opened_side_by_side_each_get_their_own_explanation(term_kube, term_session):
    conn = load_connection()
    results = await asyncio.gather(
        *(open_attach(conn, namespace="default", pod=f"missing-{i}", container="c") for i in range(5)),
        *(open_attach(conn, namespace="default", pod=term_session.pod, container=f"nope{i}") for i in range(5)),
        return_exceptions=True,
    )
    for i, err in enumerate(results[:5]):
        assert isinstance(err, AttachError) and err.status == 404 and f"missing-{i}" in err.message, err
    for i, err in enumerate(results[5:]):
        assert isinstance(err, AttachError) and err.status == 400 and f"nope{i}" in err.message, err
