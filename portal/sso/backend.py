"""mozilla-django-oidc's backend, with the checks a privileged-access tool needs on top.

The library does the code exchange (with the PKCE verifier), fetches the JWKS at every login
and checks the signature and `exp`. Here, in addition:
- the algorithm is one the provider announced and asymmetric (never `none` or HS256);
- `iss` is OIDC_ISSUER, `aud` holds our client id (and `azp` is us when there are several),
  `iat` and `sub` are there;
- the nonce is required and must be this login's;
- the userinfo `sub` must be the ID token's (OpenID Connect Core 5.3.2);
- users are found by (issuer, sub), never by e-mail; their groups are synced (groups.py).

Why a login was refused is kept on the request (`sso_refusal`) for the callback to audit and show.
"""

from __future__ import annotations

import re
from typing import Any

import jwt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import SuspiciousOperation
from django.db import IntegrityError, transaction
from django.utils import timezone
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from portal.sso import discovery, groups
from portal.sso.models import SsoIdentity

_LEEWAY_SECONDS = 60  # clock skew between us and the provider
_USERNAME_CHARS = re.compile(r"[^\w.@+-]")


class LoginRefused(SuspiciousOperation):
    """The provider's answer is not one we accept; the message says why (never a token)."""


class SsoBackend(OIDCAuthenticationBackend):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Not the library's __init__: it reads endpoints from settings, ours come from discovery.
        self.UserModel = get_user_model()
        self.OIDC_RP_CLIENT_ID = settings.OIDC_CLIENT_ID
        self.OIDC_RP_CLIENT_SECRET = settings.OIDC_CLIENT_SECRET
        self.OIDC_RP_IDP_SIGN_KEY = None
        self.OIDC_RP_SIGN_ALGO = "RS256"

    def authenticate(self, request: Any, **kwargs: Any) -> Any:
        if request is None or not settings.OIDC_ISSUER or "code" not in request.GET or "state" not in request.GET:
            return None  # not an SSO callback (a password sign-in asks every backend)
        op = discovery.provider()
        self.provider = op
        self.OIDC_OP_TOKEN_ENDPOINT = op.token_endpoint
        self.OIDC_OP_USER_ENDPOINT = op.userinfo_endpoint
        self.OIDC_OP_JWKS_ENDPOINT = op.jwks_uri
        return super().authenticate(request, **kwargs)

    # --- the ID token ------------------------------------------------------------------

    def verify_token(self, token: str, **kwargs: Any) -> dict[str, Any]:
        nonce = kwargs.get("nonce")
        if not isinstance(token, str) or not token:
            raise LoginRefused("the provider sent no ID token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise LoginRefused("the ID token is not a JWT") from exc
        alg = header.get("alg")
        if alg not in self.provider.signing_algs:
            raise LoginRefused(f"the ID token is signed with {alg!r}, not one of {list(self.provider.signing_algs)}")
        self.OIDC_RP_SIGN_ALGO = alg  # what retrieve_matching_jwk matches the key's alg against
        try:
            key = self.retrieve_matching_jwk(token)
        except SuspiciousOperation:
            raise LoginRefused("no key of the provider's JWKS matches the ID token's kid and alg") from None
        except (jwt.PyJWTError, KeyError, TypeError, ValueError) as exc:
            raise LoginRefused(f"the provider's JWKS or the token's header is not usable ({type(exc).__name__})") from exc
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=settings.OIDC_CLIENT_ID,
                issuer=self.provider.issuer,
                leeway=_LEEWAY_SECONDS,
                options={"require": ["iss", "aud", "exp", "iat", "sub"]},
            )
        except jwt.InvalidSignatureError as exc:
            raise LoginRefused("the ID token's signature does not match the provider's keys") from exc
        except jwt.InvalidAudienceError as exc:
            raise LoginRefused("the ID token is for another client (aud)") from exc
        except jwt.InvalidIssuerError as exc:
            raise LoginRefused("the ID token is from another issuer (iss)") from exc
        except jwt.ExpiredSignatureError as exc:
            raise LoginRefused("the ID token has expired") from exc
        except jwt.PyJWTError as exc:
            raise LoginRefused(f"the ID token is not valid ({exc})") from exc
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != settings.OIDC_CLIENT_ID:
            raise LoginRefused("the ID token names several audiences and we are not its azp")
        if not nonce or claims.get("nonce") != nonce:
            raise LoginRefused("the ID token's nonce is missing or not this login's")
        return claims

    def get_userinfo(self, access_token: str, id_token: str, payload: dict[str, Any]) -> dict[str, Any]:
        import requests

        response = requests.get(
            self.provider.userinfo_endpoint,
            headers={"Authorization": f"Bearer {access_token}"},
            timeout=settings.OIDC_TIMEOUT,
            allow_redirects=False,
        )
        response.raise_for_status()
        if not response.headers.get("content-type", "").lower().startswith("application/json"):
            raise LoginRefused("the provider's userinfo answer is not JSON")
        info = response.json()
        if not isinstance(info, dict) or info.get("sub") != payload.get("sub"):
            raise LoginRefused("the provider's userinfo is about another subject than the ID token")
        return info

    # --- the user ---------------------------------------------------------------------

    def get_or_create_user(self, access_token: str, id_token: str, payload: dict[str, Any]) -> Any:
        try:
            return self._user_for(access_token, id_token, payload)
        except SuspiciousOperation as exc:
            # The library turns this into a plain failed login: keep the reason for the callback.
            self.request.sso_refusal = str(exc)
            raise

    def _user_for(self, access_token: str, id_token: str, payload: dict[str, Any]) -> Any:
        info = self.get_userinfo(access_token, id_token, payload)
        claims = {**info, **payload}  # the signed ID token wins where both say something
        group_names = groups.names_from_claim(claims.get(settings.OIDC_GROUPS_CLAIM))
        with transaction.atomic():
            identity = (
                SsoIdentity.objects.select_for_update().select_related("user")
                .filter(issuer=self.provider.issuer, subject=str(claims["sub"])).first()
            )
            if identity is None:
                identity = self._create_identity(claims)
            user = identity.user
            if not user.is_active:
                raise LoginRefused(f"the Ephemera account {user.get_username()!r} is deactivated")
            changed = []
            for field, claim in (("email", "email"), ("first_name", "given_name"), ("last_name", "family_name")):
                if claim == "email" and claims.get("email_verified") is False:
                    continue  # notifications must not go to an address the provider says is not theirs
                value = str(claims.get(claim) or "")[:150]
                if value and getattr(user, field) != value:
                    setattr(user, field, value)
                    changed.append(field)
            if changed:
                user.save(update_fields=changed)
            groups.sync(user, group_names)
            identity.groups = group_names
            identity.last_login_at = timezone.now()
            identity.save(update_fields=["groups", "last_login_at"])
        self.request.sso_claims = {"auth_time": claims.get("auth_time"), "iat": claims.get("iat")}
        return user

    def _create_identity(self, claims: dict[str, Any]) -> SsoIdentity:
        subject = str(claims["sub"])
        try:
            with transaction.atomic():
                user = self._create_user(claims)
                return SsoIdentity.objects.create(user=user, issuer=self.provider.issuer, subject=subject)
        except IntegrityError:
            # Two first sign-ins of the same account at once: the other one made it.
            return SsoIdentity.objects.select_for_update().select_related("user").get(issuer=self.provider.issuer, subject=subject)

    def _create_user(self, claims: dict[str, Any]) -> Any:
        base = ""
        for claim in ("preferred_username", "email", "sub"):
            raw = str(claims.get(claim) or "")
            if claim == "email":
                raw = raw.split("@")[0]
            base = _USERNAME_CHARS.sub("", raw)[:140]
            if base:
                break
        base = base or "sso-user"
        # A local account of the same name is never taken over: the provider's user gets a suffix.
        for n in range(1, 1000):
            name = base if n == 1 else f"{base}-{n}"
            if self.UserModel.objects.filter(username__iexact=name).exists():
                continue
            try:
                with transaction.atomic():
                    email = "" if claims.get("email_verified") is False else str(claims.get("email") or "")[:254]
                user = self.UserModel.objects.create_user(name, email=email)
                return user
            except IntegrityError:
                continue
        raise LoginRefused("no free username for this provider account")

    def get_user(self, user_id: Any) -> Any:
        user = self.UserModel.objects.filter(pk=user_id).first()
        return user if user is not None and user.is_active else None
