"""portal.kube.attach against kubesim's real apiserver: protocol choice and clear refusals."""

from __future__ import annotations

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
