"""The portal's JSON API over HTTP, every answer that isn't a success turned into a CliError.

One place maps HTTP to exit codes: 401/429 -> AUTH, unreachable/5xx -> UNREACHABLE, any other
refusal -> ERROR with the portal's own words (its field errors, its `detail`).
"""

from __future__ import annotations

import json
from types import TracebackType
from typing import IO, Any, NoReturn

import aiohttp

from ephemera_cli import __version__
from ephemera_cli.config import LOGIN_HINT, Config
from ephemera_cli.errors import CliError, Exit
from ephemera_cli.output import clean

TIMEOUT = aiohttp.ClientTimeout(total=30, connect=10)
# A download (a recording) may take longer than one API call; what must not happen is a stall.
DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=10, sock_read=30)


class PortalError(CliError):
    """A refusal by the portal, with its HTTP status (callers branch on 404 and 409)."""

    def __init__(self, message: str, code: Exit, status: int, body: Any = None) -> None:
        super().__init__(message, code)
        self.status = status
        self.body = body


def _words(body: Any, names: dict[str, str] | None = None) -> str:
    """The portal's reason in one line: `detail`, or `field: message; ...` from a 400 (fields
    named as `names` says: the command's own flags rather than the API's field names)."""
    if isinstance(body, dict):
        if isinstance(body.get("detail"), str):
            return clean(body["detail"])
        parts = []
        for field, messages in body.items():
            text = " ".join(str(m) for m in messages) if isinstance(messages, list) else str(messages)
            parts.append(text if field == "non_field_errors" else f"{(names or {}).get(field, field)}: {text}")
        return clean("; ".join(parts))
    if isinstance(body, list):
        return clean(" ".join(str(m) for m in body))
    return clean(str(body))[:200]


class Portal:
    """An authenticated connection to one portal (`async with Portal(config) as api:`)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Portal:
        self.http = aiohttp.ClientSession(
            timeout=TIMEOUT,
            headers={"Authorization": f"Bearer {self.config.token}", "User-Agent": f"kubectl-ephemera/{__version__}"},
        )
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self.http is not None:
            await self.http.close()

    def unreachable(self, exc: BaseException) -> CliError:
        reason = clean(str(exc)) or type(exc).__name__
        return CliError(
            f"can't reach the portal at {self.config.url} ({reason}); check the URL ({LOGIN_HINT}) and your network",
            Exit.UNREACHABLE,
        )

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None, names: dict[str, str] | None = None) -> Any:
        assert self.http is not None, "use `async with Portal(...)`"
        try:
            # No redirects: following one could carry the token to another host; the portal
            # itself never redirects its API (an http -> https redirect means: log in with https).
            async with self.http.request(
                method, self.config.url + path, json=body if method == "POST" else None, allow_redirects=False
            ) as resp:
                raw = await resp.read()
                status, location = resp.status, resp.headers.get("Location", "")
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise self.unreachable(exc) from None
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = raw.decode("utf-8", "replace")
        if 200 <= status < 300:
            return data
        self.fail(path, status, data, location, names)

    async def download(self, path: str, into: IO[bytes]) -> None:
        """GET a file (not JSON) into `into`, chunk by chunk; refusals raise as `call`'s do."""
        assert self.http is not None, "use `async with Portal(...)`"
        try:
            async with self.http.get(self.config.url + path, allow_redirects=False, timeout=DOWNLOAD_TIMEOUT) as resp:
                if 200 <= resp.status < 300:
                    async for chunk in resp.content.iter_chunked(64 * 1024):
                        into.write(chunk)
                    return
                raw = await resp.read()
                status, location = resp.status, resp.headers.get("Location", "")
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise self.unreachable(exc) from None
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = raw.decode("utf-8", "replace")
        self.fail(path, status, data, location)

    def fail(self, path: str, status: int, data: Any, location: str = "", names: dict[str, str] | None = None) -> NoReturn:
        """The one mapping of a non-2xx answer to a PortalError and its exit code."""
        words = _words(data, names) if data is not None else f"HTTP {status}"
        if not isinstance(data, dict | list) and not 200 <= status < 400:
            # A page, not the API's JSON: a proxy's error page, or not the portal at all.
            words = f"HTTP {status}, and not the portal's JSON: is {self.config.url} the portal? ({LOGIN_HINT})"
        if 300 <= status < 400:
            raise PortalError(
                f"the portal redirects {path} to {clean(location) or '?'}; log in with the portal's real URL ({LOGIN_HINT})",
                Exit.UNREACHABLE, status,
            )
        if status == 401:
            raise PortalError(f"the portal refused the token ({words}); get a new one and run: {LOGIN_HINT}", Exit.AUTH, status)
        if status == 429:
            raise PortalError(f"the portal is refusing tokens from this address ({words}); wait, then retry", Exit.AUTH, status)
        if status >= 500:
            raise PortalError(f"the portal failed ({status}: {words}); try again later or tell its admins", Exit.UNREACHABLE, status)
        raise PortalError(words, Exit.ERROR, status, data)

    async def get(self, path: str) -> Any:
        return await self.call("GET", path)

    async def post(self, path: str, body: dict[str, Any] | None = None, names: dict[str, str] | None = None) -> Any:
        return await self.call("POST", path, body or {}, names)
