"""Property: whatever body or query an API endpoint gets, the answer is below 500, and an
answer in the 4xx range wrote nothing.

Hypothesis generates the bodies: objects with the endpoint's own fields (and strangers)
holding hostile values (NUL, lone surrogates, huge and non-finite numbers, deep nesting, wrong
types, over-long text, the real pod's name so some requests get as far as the cluster), any
JSON value at all, and raw bytes that are not JSON. Each goes out with a real bearer token
through DRF's test client, from the same rows each time (every example is rolled back).

Deterministic for CI: derandomize=True (the same examples every run, no example database),
and max_examples keeps the whole file well under a minute.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import pytest
from django.db import transaction
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from tests.conftest import TARGET_CONTAINER
from tests.portal.api_world import World, build_world, snapshot

# EPHEMERA_PROPERTY_EXAMPLES=2000 for a long local hunt; CI keeps the default.
EXAMPLES = int(os.environ.get("EPHEMERA_PROPERTY_EXAMPLES", "40"))
POD = "__POD__"  # replaced by the real pod's name in kubesim, so some requests reach the cluster check
PROPERTY_SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,  # a request through the stack is not a microbenchmark; timing must not flake
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- values -----------------------------------------------------------------------------------

HOSTILE_TEXT = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "a\x00b",
        "\ud800",
        "x\udfff",
        "\ud83d",
        "\x1b[31m",
        "é€😀",
        "\ufffd",
        "x" * 3000,
        "1e999",
        "NaN",
        "-1",
        "0",
        "30",
        "30.5",
        "true",
        "null",
        "[]",
        "{}",
        "default",
        "busybox",
        "general",
        "sysadmin",
        "node",
        "pod",
        POD,
        TARGET_CONTAINER,
        "Bad_Name",
        "a" * 64,
        "kube-system",
        "../../etc",
        "'; DROP TABLE x; --",
    ]
)
ANY_TEXT = st.one_of(
    HOSTILE_TEXT,
    st.text(max_size=30),
    st.text(alphabet=st.characters(codec=None, categories=["Cs", "Cc", "Zs", "Ll"]), max_size=10),
)
NUMBERS = st.one_of(
    st.integers(),
    st.sampled_from([0, -1, 1, 15, 120, 121, 10**18, -(10**18), 10**400, -(10**400)]),
    st.floats(allow_nan=True, allow_infinity=True),  # json.dumps writes NaN / Infinity for these
    st.sampled_from([1e300, -1e300, 15.0, 15.5, 1e-300]),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, ANY_TEXT)
JSON_VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4), max_leaves=12
)


RAW_TOKENS = st.sampled_from(["1e999", "-1e999", "1E400", "NaN", "Infinity", "-Infinity", "9" * 5000, "-0", "1.0e+2"])


def body_for(fields: tuple[str, ...], valid: dict[str, Any]) -> st.SearchStrategy[str | bytes]:
    """A request body for an endpoint whose known fields are `fields` and `valid` a good body."""
    own = st.fixed_dictionaries({}, optional={f: JSON_VALUES for f in fields})
    # A good body with one or two fields spoiled gets past the other checks to the service.
    near_valid = st.builds(lambda spoilt: {**valid, **spoilt}, st.dictionaries(st.sampled_from(fields), JSON_VALUES, max_size=2))
    with_strangers = st.builds(lambda a, b: {**b, **a}, own, st.dictionaries(ANY_TEXT, JSON_VALUES, max_size=3))
    as_json = st.one_of(near_valid, near_valid, own, with_strangers, JSON_VALUES).map(json.dumps)  # \ud800 goes out escaped
    # A field holding a token Python's encoder never writes (1e999) or a very deep value.
    raw_field = st.builds(
        lambda f, t: json.dumps({f: "__TOKEN__"}).replace('"__TOKEN__"', t),
        st.sampled_from(fields),
        st.one_of(RAW_TOKENS, st.integers(50, 20_000).map(lambda n: "[" * n + "]" * n)),
    )
    raw_bytes = st.one_of(
        st.binary(max_size=40),
        st.sampled_from([b"", b"{", b'{"a": "\xed\xa0\x80"}', b"\xff\xfe{}", b"[" * 100_000, b'{"a":' * 5000]),
    )
    return st.one_of(as_json, raw_field, raw_bytes)


CONTENT_TYPES = st.sampled_from(
    ["application/json"] * 6
    + [
        "application/json; charset=utf-16",
        "application/json; charset=bz2_codec",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ]
)

# --- endpoints --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    who: str
    path: str  # formatted with the World's ids
    valid: dict[str, Any]  # a body the endpoint accepts; its keys are the fields it reads


CREATE = {
    "namespace": "default",
    "pod": POD,
    "container": TARGET_CONTAINER,
    "image": "busybox",
    "profile": "general",
    "reason": "checkout 502s",
    "duration_minutes": 15,
    "kind": "pod",
    "node": "",
}
ENDPOINTS = {
    "create-request": Endpoint("alice", "/api/v1/requests", CREATE),
    "approve": Endpoint("bob", "/api/v1/requests/{pending}/approve", {"comment": "ok"}),
    "deny": Endpoint("bob", "/api/v1/requests/{pending}/deny", {"comment": "no"}),
    "cancel": Endpoint("alice", "/api/v1/requests/{pending}/cancel", {}),
    "end-own": Endpoint("alice", "/api/v1/sessions/{running}/end", {"reason": "done", "comment": ""}),
    "revoke": Endpoint("bob", "/api/v1/sessions/{running}/end", {"reason": "revoked", "comment": ""}),
    "extend": Endpoint("alice", "/api/v1/sessions/{running}/extend", {"minutes": 10, "reason": "more"}),
    "extension-approve": Endpoint("bob", "/api/v1/extensions/{extension}/approve", {"comment": "ok"}),
    "extension-deny": Endpoint("bob", "/api/v1/extensions/{extension}/deny", {"comment": "no"}),
}


@pytest.fixture
def world(alice: Any, make_request: Any) -> World:
    return build_world(alice, make_request)


@pytest.fixture
def clients(people: Any, api_client_for: Callable[..., APIClient]) -> dict[str, APIClient]:
    return {who: api_client_for(getattr(people, who)) for who in ("alice", "bob", "dave")}


@contextlib.contextmanager
def rolled_back() -> Iterator[None]:
    """One example in a savepoint that is rolled back: every example meets the same rows."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def _answer(resp: Any) -> bytes:
    # A streamed answer fails while it is read, not when it starts: read it all.
    return b"".join(resp.streaming_content) if resp.streaming else resp.content


def _check(resp: Any, before: dict[str, Any], what: str) -> None:
    content = _answer(resp)
    assert resp.status_code < 500, (what, resp.status_code, content[:300])
    if 400 <= resp.status_code < 500:
        assert snapshot() == before, (what, resp.status_code, content[:300])


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_no_body_makes_an_endpoint_fail(name: str, world: World, clients: dict[str, APIClient], nginx_pod: str) -> None:
    endpoint = ENDPOINTS[name]
    ids = {"pending": world.pending.pk, "running": world.running.pk, "extension": world.extension.pk}
    path = endpoint.path.format(**ids)
    client = clients[endpoint.who]
    fields = tuple(endpoint.valid) or ("comment",)

    @PROPERTY_SETTINGS
    @given(body=body_for(fields, endpoint.valid), content_type=CONTENT_TYPES)
    def check(body: str | bytes, content_type: str) -> None:
        if isinstance(body, str):
            body = body.replace(POD, nginx_pod)
        with rolled_back():
            before = snapshot()
            resp = client.post(path, body, content_type=content_type)
            _check(resp, before, f"{name}: {body[:200]!r}")

    check()


# --- queries ----------------------------------------------------------------------------------

OFFSETS = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))
DATETIMES = st.one_of(
    st.datetimes().map(datetime.isoformat),
    st.builds(lambda d, tz: d.replace(tzinfo=tz).isoformat(), st.datetimes(), OFFSETS),
    st.sampled_from(
        [
            "0001-01-01T00:00:00+05:00",
            "9999-12-31T23:59:59-05:00",
            "2026-01-01",
            "2026-W01",
            "20260101",
            datetime.now(UTC).isoformat(),
            "",
            "yesterday",
        ]
    ),
    st.dates().map(lambda d: d.isoformat()),
)
QUERY_VALUES = st.one_of(DATETIMES, ANY_TEXT)


def _query(params: dict[str, str]) -> str:
    # Sent as UTF-8 bytes, surrogates as the bytes a careless client would send (surrogatepass).
    return "&".join(
        f"{quote(k.encode('utf-8', 'surrogatepass'))}={quote(v.encode('utf-8', 'surrogatepass'))}" for k, v in params.items()
    )


def test_no_query_makes_the_audit_export_fail(world: World, clients: dict[str, APIClient]) -> None:
    @PROPERTY_SETTINGS
    @given(params=st.fixed_dictionaries({}, optional={"since": QUERY_VALUES, "until": QUERY_VALUES}))
    def check(params: dict[str, str]) -> None:
        before = snapshot()
        resp = clients["dave"].get(f"/api/v1/audit/export?{_query(params)}")
        _check(resp, before, f"export: {params!r}")

    check()


HISTORY_FILTERS = ("user", "cluster", "namespace", "pod", "node", "status", "reviewed", "command", "since", "until", "page")


def test_no_filter_makes_the_history_page_fail(world: World, people: Any) -> None:
    browser = Client()
    browser.force_login(people.dave)

    @PROPERTY_SETTINGS
    @given(params=st.fixed_dictionaries({}, optional={k: QUERY_VALUES for k in HISTORY_FILTERS}))
    def check(params: dict[str, str]) -> None:
        before = snapshot()
        resp = browser.get(f"/sessions/history/?{_query(params)}")
        _check(resp, before, f"history: {params!r}")
        assert resp.status_code in (200, 400)

    check()
