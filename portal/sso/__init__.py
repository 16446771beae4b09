"""Single sign-on: OpenID Connect login with group sync (docs/sso.md).

config.py    checks the OIDC_* settings at start-up (no Django imports: settings.py uses it)
discovery.py the provider's endpoints, from its discovery document, cached
backend.py   mozilla-django-oidc's backend, stricter: iss, aud, azp, exp, nonce; users by (issuer, sub)
groups.py    the IdP's groups become the user's Django groups, and OIDC_ADMIN_GROUPS admins
local.py     the password backend, limited to superusers when EPHEMERA_LOCAL_LOGIN=0
views.py     start and callback of the code flow (PKCE, state, nonce), and re-authentication
models.py    SsoIdentity: which provider account a user is
"""
