"""DRF authentication by `Authorization: Bearer <token>` (tokens from portal.tokens).

Bad tokens count against the client's address (portal.login_throttle); at the limit, that
address gets 429 for every bearer token, good or bad, until the lock ends.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from portal import login_throttle
from portal.tokens import user_for_token


class BearerTokenAuthentication(BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None  # not ours: let session authentication try
        http_request = request._request
        until = login_throttle.token_refused_until(http_request)
        if until is not None:
            refused = exceptions.Throttled(wait=login_throttle.retry_minutes(until) * 60)
            # The same words as the sign-in form (DRF's default would add "Expected available in 900 seconds").
            refused.detail = exceptions.ErrorDetail(login_throttle.refusal_message(until), code="throttled")
            raise refused
        if len(header) != 2:
            login_throttle.token_failed(http_request)
            raise exceptions.AuthenticationFailed("Invalid Authorization header: expected 'Bearer <token>'.")
        try:
            raw = header[1].decode("ascii")
        except UnicodeDecodeError:
            login_throttle.token_failed(http_request)
            raise exceptions.AuthenticationFailed("Invalid token.") from None
        user = user_for_token(raw)
        if user is None:
            login_throttle.token_failed(http_request)
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        return (user, None)

    def authenticate_header(self, request: Request) -> str:
        # Makes DRF answer 401 (not 403) with WWW-Authenticate when authentication fails.
        return f'{self.keyword} realm="api"'


class BearerTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "portal.api_auth.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer"}
