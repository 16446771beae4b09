"""Placeholder: the core engineer replaces this with bearer-token authentication."""

from rest_framework.authentication import BaseAuthentication


class BearerTokenAuthentication(BaseAuthentication):
    def authenticate(self, request):  # type: ignore[no-untyped-def]
        return None
