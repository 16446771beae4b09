"""Django settings for Ephemera, all read from the environment (see README "Settings").

Embedded defaults (SQLite, in-memory channel layer) make a fresh checkout run with
`make run`; production sets DATABASE_URL, REDIS_URL, SECRET_KEY and ALLOWED_HOSTS.
Any bad value stops start-up with a message naming the setting.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import dj_database_url

from approvals.policy.schema import PolicyError
from approvals.policy.schema import load as load_policy
from portal.env import SettingError, env, envbool, envint, envlist
from portal.notifications import config as notify_config
from portal.sso import config as sso_config

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env("EPHEMERA_VAR_DIR", str(BASE_DIR / "var")))

# Demo mode: embedded defaults, demo users allowed (`seed_demo`), kubesim as the cluster.
DEMO = envbool("EPHEMERA_DEMO", False)
DEBUG = envbool("DEBUG", False)

SECRET_KEY = env("SECRET_KEY")
if not SECRET_KEY:
    if not (DEMO or DEBUG):
        raise SettingError(
            "SECRET_KEY is required (set SECRET_KEY or SECRET_KEY_FILE); "
            "only demo mode (EPHEMERA_DEMO=1) or DEBUG=1 may run without one"
        )
    SECRET_KEY = "ephemera-insecure-demo-key-not-for-production"  # noqa: S105  (demo/debug only, refused otherwise)

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if (DEMO or DEBUG) else [])
if not ALLOWED_HOSTS:
    raise SettingError("ALLOWED_HOSTS is required outside demo/debug mode (comma-separated host names)")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])
for _origin in CSRF_TRUSTED_ORIGINS:
    if not _origin.startswith(("http://", "https://")):
        raise SettingError(f"CSRF_TRUSTED_ORIGINS entry {_origin!r} must start with http:// or https://")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files for /api/docs/, served by us
    "channels",
    "portal",
    "approvals",
    "sessions.apps.DebugSessionsConfig",
]

MIDDLEWARE = [
    # First: /healthz, /readyz and /metrics are asked by pod IP over plain HTTP (probes,
    # Prometheus), so they are answered before Host validation and the https redirect.
    "portal.health.ProbeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Right after SecurityMiddleware: every HTML answer gets the CSP, the error pages of inner layers too.
    "portal.security_headers.ContentSecurityPolicyMiddleware",
    # Request id, user and session id on every log line of the request (portal/json_logging.py).
    "portal.json_logging.RequestLogContextMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "portal.actor_context.AuditActorMiddleware",
    # Every 403 is an audit event, rate-limited (portal/attempts.py).
    "portal.attempts.RefusalAuditMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # After auth and messages: signs out sessions past their age or idle limit.
    "portal.session_timeout.SessionTimeoutMiddleware",
    # After it: a signed-in SSO user is re-checked with the provider now and then (portal/sso/recheck.py).
    "portal.sso.recheck.SsoRecheckMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "portal.urls"
ASGI_APPLICATION = "portal.asgi.application"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "portal" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.ephemera",
            ],
        },
    },
]

_default_db = f"sqlite:///{VAR_DIR / 'ephemera.sqlite3'}"
try:
    DATABASES = {"default": dj_database_url.parse(env("DATABASE_URL", _default_db), conn_max_age=60)}
except Exception as exc:  # dj_database_url raises several types; all mean the same thing here
    raise SettingError(f"DATABASE_URL cannot be parsed: {exc}") from exc
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default must just work on a fresh checkout: SQLite won't make the folder.
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # SQLite: a busy timeout so the reaper, the portal and tests don't fail on a locked file,
    # and IMMEDIATE transactions so concurrent writers serialize instead of deadlocking.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL")
if REDIS_URL:
    if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
        raise SettingError(f"REDIS_URL must start with redis://, rediss:// or unix:// (got {REDIS_URL.split(':')[0]}://...)")
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py 8 reads with a 5 s socket timeout by default, exactly channels-redis's BRPOP
            # timeout: a consumer idle for 5 s (no group message) then crashes with TimeoutError.
            # A longer read timeout keeps BRPOP's own 5 s in charge, and still notices a dead Redis.
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "socket_timeout": 30}],
                "prefix": env("EPHEMERA_CHANNEL_PREFIX", "ephemera"),
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# The npm build (frontend/) writes its bundles here; nothing is loaded from a CDN.
STATICFILES_DIRS = [BASE_DIR / "frontend" / "build"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(VAR_DIR / "media")}},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
if DEMO or DEBUG:
    # Served straight from the finders here; STATIC_ROOT exists only after collectstatic.
    warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)

# A web session lasts EPHEMERA_SESSION_MAX_AGE_HOURS from sign-in at most, and ends after
# EPHEMERA_SESSION_IDLE_MINUTES without a request from the user (portal/session_timeout.py).
EPHEMERA_SESSION_MAX_AGE_HOURS = envint("EPHEMERA_SESSION_MAX_AGE_HOURS", 8, minimum=1, maximum=24 * 30)
EPHEMERA_SESSION_IDLE_MINUTES = envint("EPHEMERA_SESSION_IDLE_MINUTES", 60, minimum=1)
if EPHEMERA_SESSION_IDLE_MINUTES > EPHEMERA_SESSION_MAX_AGE_HOURS * 60:
    raise SettingError("EPHEMERA_SESSION_IDLE_MINUTES is above EPHEMERA_SESSION_MAX_AGE_HOURS (in minutes)")
SESSION_COOKIE_AGE = EPHEMERA_SESSION_MAX_AGE_HOURS * 3600
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = envbool("EPHEMERA_SECURE_COOKIES", not (DEMO or DEBUG))
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Behind a TLS-terminating proxy: trust its X-Forwarded-Proto, and take the client's address
# from the right-most X-Forwarded-For hop (the one that proxy appended; the rest is the client's).
EPHEMERA_BEHIND_TLS_PROXY = envbool("EPHEMERA_BEHIND_TLS_PROXY", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if EPHEMERA_BEHIND_TLS_PROXY else None
# Served to browsers over TLS only: plain HTTP redirects to https, and HSTS tells browsers
# never to try http again. Not by default in demo/debug: HSTS would stick to localhost.
EPHEMERA_TLS = envbool("EPHEMERA_TLS", EPHEMERA_BEHIND_TLS_PROXY and not (DEMO or DEBUG))
SECURE_SSL_REDIRECT = EPHEMERA_TLS
# Kubernetes probes and load balancers ask the pod itself, over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]  # ProbeMiddleware answers them first anyway
SECURE_HSTS_SECONDS = envint("EPHEMERA_HSTS_SECONDS", 365 * 24 * 3600, minimum=0) if EPHEMERA_TLS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("EPHEMERA_HSTS_INCLUDE_SUBDOMAINS", True)
# Preload is a promise about the whole registrable domain, only its owner can make it; without
# it, `check --deploy`'s reminder (W021) is noise, so it is silenced unless preload is on.
SECURE_HSTS_PRELOAD = envbool("EPHEMERA_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SECURE_REFERRER_POLICY = "same-origin"  # same-origin Referer still reaches Django's CSRF check over https
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

# Failed sign-ins (form and admin) are counted per account and per client address, in the
# database so all replicas share them; at the limit, that account or address is refused, even
# with the right password, for EPHEMERA_LOGIN_WINDOW_MINUTES. Bad API bearer tokens count per
# address (separately, with the address limit).
EPHEMERA_LOGIN_ACCOUNT_FAILURES = envint("EPHEMERA_LOGIN_ACCOUNT_FAILURES", 5, minimum=1, maximum=1000)
EPHEMERA_LOGIN_ADDRESS_FAILURES = envint("EPHEMERA_LOGIN_ADDRESS_FAILURES", 20, minimum=1, maximum=100000)
EPHEMERA_LOGIN_WINDOW_MINUTES = envint("EPHEMERA_LOGIN_WINDOW_MINUTES", 15, minimum=1, maximum=24 * 60)

# --- Single sign-on (portal/sso/, docs/sso.md) ------------------------------------------
# OpenID Connect: OIDC_ISSUER turns it on (endpoints and keys come from the issuer's discovery
# document). The client secret may be given as OIDC_CLIENT_SECRET_FILE and is never logged.
OIDC_ISSUER = env("OIDC_ISSUER").strip().rstrip("/")
OIDC_CLIENT_ID = env("OIDC_CLIENT_ID").strip()
OIDC_CLIENT_SECRET = env("OIDC_CLIENT_SECRET").strip()
# An empty value (docker-compose's `${X:-}`) means the default, like an unset one.
OIDC_SCOPES = " ".join(env("OIDC_SCOPES").split()) or "openid email profile groups"
OIDC_GROUPS_CLAIM = env("OIDC_GROUPS_CLAIM").strip() or "groups"
OIDC_ADMIN_GROUPS = envlist("OIDC_ADMIN_GROUPS", [])
# What the sign-in button says: "Sign in with <this>".
OIDC_PROVIDER_NAME = env("OIDC_PROVIDER_NAME").strip() or "single sign-on"
# Seconds to wait for the provider (discovery, token, userinfo, keys).
OIDC_TIMEOUT = envint("OIDC_TIMEOUT_SECONDS", 10, minimum=1, maximum=120)
# Minutes between two silent checks with the provider (prompt=none) of a signed-in SSO user; 0: none.
OIDC_RECHECK_MINUTES = envint("OIDC_RECHECK_MINUTES", 15, minimum=0, maximum=24 * 60)
# Password sign-in: off (0) leaves it to superusers only, as break-glass (each one audited).
EPHEMERA_LOCAL_LOGIN = envbool("EPHEMERA_LOCAL_LOGIN", True)
sso_config.check(issuer=OIDC_ISSUER, client_id=OIDC_CLIENT_ID, client_secret=OIDC_CLIENT_SECRET, scopes=OIDC_SCOPES,
                 groups_claim=OIDC_GROUPS_CLAIM, local_login=EPHEMERA_LOCAL_LOGIN, insecure_ok=DEMO or DEBUG)
AUTHENTICATION_BACKENDS = ["portal.sso.local.LocalPasswordBackend"]
if OIDC_ISSUER:
    AUTHENTICATION_BACKENDS.append("portal.sso.backend.SsoBackend")
# mozilla-django-oidc's own names for the values above (it reads them from settings).
OIDC_RP_CLIENT_ID = OIDC_CLIENT_ID
OIDC_RP_CLIENT_SECRET = OIDC_CLIENT_SECRET
OIDC_RP_SCOPES = OIDC_SCOPES
OIDC_RP_SIGN_ALGO = "RS256"  # the default; the provider's discovery document may name ES256 instead
OIDC_USE_PKCE = True
OIDC_PKCE_CODE_CHALLENGE_METHOD = "S256"
OIDC_USE_NONCE = True
OIDC_AUTHENTICATE_CLASS = "portal.sso.views.SsoStart"
OIDC_CALLBACK_CLASS = "portal.sso.views.SsoCallback"
OIDC_STORE_ID_TOKEN = False
OIDC_STORE_ACCESS_TOKEN = False

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.api_auth.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON only (what the API documents; a cross-site form post gets 415), and bodies only
    # as deep and as finite as the API uses (see portal/api_parsers.py).
    "DEFAULT_PARSER_CLASSES": ["portal.api_parsers.StrictJSONParser"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Ephemera API",
    "DESCRIPTION": "Just-in-time Kubernetes debug access: requests, approvals, sessions.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Ephemera policy and limits -------------------------------------------------------
# The approval policy is a file (docs/policy.md): which rule applies to which exact debug spec,
# how many approvals from which groups, images, durations, tickets. Without it the built-in
# policy applies (one approval, nothing auto-approved, busybox, 120 minutes at most).
_REMOVED = {
    "EPHEMERA_APPROVALS_REQUIRED": "`approvals:` on a rule",
    "EPHEMERA_AUTO_APPROVE_NAMESPACES": "a rule with `approvals: 0` and `match: {namespace: [...]}`",
    "EPHEMERA_AUTO_APPROVE_PROFILES": "a rule with `approvals: 0` and `match: {profile: [...]}`",
    "EPHEMERA_DEBUG_IMAGES": "`images:` at the top of the policy (or on a rule)",
    "EPHEMERA_MAX_DURATION_MINUTES": "`max_duration_minutes:` on a rule",
}
_still_set = [name for name in _REMOVED if name in os.environ]
if _still_set:
    raise SettingError("; ".join(
        f"{name} was removed: set {_REMOVED[name]} in the policy file EPHEMERA_POLICY_FILE instead (docs/policy.md)"
        for name in _still_set
    ))
EPHEMERA_DEFAULT_DURATION_MINUTES = envint("EPHEMERA_DEFAULT_DURATION_MINUTES", 30, minimum=1)
# How long a pending request waits for a decision before it expires (and how long an approved
# session under a `clock: first_connect` rule waits for its first connect).
EPHEMERA_REQUEST_TTL_MINUTES = envint("EPHEMERA_REQUEST_TTL_MINUTES", 60, minimum=1)
EPHEMERA_APPROVER_GROUP = env("EPHEMERA_APPROVER_GROUP", "approvers")
EPHEMERA_AUDITOR_GROUP = env("EPHEMERA_AUDITOR_GROUP", "auditors")
EPHEMERA_POLICY_FILE = env("EPHEMERA_POLICY_FILE", "")
try:
    EPHEMERA_POLICY = load_policy(EPHEMERA_POLICY_FILE or None, default_approvers=EPHEMERA_APPROVER_GROUP)
except PolicyError as exc:
    raise SettingError(f"EPHEMERA_POLICY_FILE {exc}") from None
# How long provisioning waits for the debug container to run before it fails the session.
EPHEMERA_PROVISION_TIMEOUT_SECONDS = envint("EPHEMERA_PROVISION_TIMEOUT_SECONDS", 120, minimum=5)
# Where node-debugger pods are created (issue: node debugging).
EPHEMERA_NODE_DEBUG_NAMESPACE = env("EPHEMERA_NODE_DEBUG_NAMESPACE", "default")
# Debug access that bypassed the portal is POSTed here as JSON (may carry a token: a secret,
# so NAME_FILE works and it is never logged); empty: findings only on the admin page and audit.
EPHEMERA_UNMANAGED_WEBHOOK_URL = env("EPHEMERA_UNMANAGED_WEBHOOK_URL")
# A session running longer than this (extensions included) is flagged like an unmanaged one.
EPHEMERA_LONG_SESSION_MINUTES = envint("EPHEMERA_LONG_SESSION_MINUTES", 240, minimum=1)
# Namespaces whose pods oversight doesn't flag for being privileged or on host namespaces
# (a cluster's own daemons: kube-proxy, the CNI). Ephemeral containers are flagged everywhere else.
EPHEMERA_OVERSIGHT_IGNORE_NAMESPACES = envlist("EPHEMERA_OVERSIGHT_IGNORE_NAMESPACES", [])
# Seconds between two passes of `manage.py run_reaper`.
EPHEMERA_REAPER_INTERVAL_SECONDS = envint("EPHEMERA_REAPER_INTERVAL_SECONDS", 5, minimum=1)
# Cluster connection: KUBECONFIG (path) or, when unset, the in-cluster service account.
EPHEMERA_KUBECONFIG = env("KUBECONFIG")
EPHEMERA_KUBE_CONTEXT = env("EPHEMERA_KUBE_CONTEXT")
EPHEMERA_CLUSTER_NAME = env("EPHEMERA_CLUSTER_NAME", "default")
# Labels the debug pods this installation makes; the reaper only touches its own.
EPHEMERA_INSTANCE = env("EPHEMERA_INSTANCE", "ephemera")
if not re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?", EPHEMERA_INSTANCE):
    raise SettingError(f"EPHEMERA_INSTANCE={EPHEMERA_INSTANCE!r} must be a Kubernetes label value (letters, digits, - _ ., at most 63)")
# Terminal websocket: Origins allowed besides ALLOWED_HOSTS' own.
EPHEMERA_WS_ALLOWED_ORIGINS = envlist("EPHEMERA_WS_ALLOWED_ORIGINS", [])
# Session recordings always hold output and resizes; typed input (and the commands derived
# from it) too unless this is off, e.g. where people type secrets into debug shells.
EPHEMERA_RECORD_INPUT = envbool("EPHEMERA_RECORD_INPUT", True)
# Keep the bytes of each file downloaded from a session, for the reviewer (sessions/files/).
EPHEMERA_KEEP_TRANSFERRED_FILES = envbool("EPHEMERA_KEEP_TRANSFERRED_FILES", True)

# --- Metrics (portal/metrics.py) ------------------------------------------------------
# /metrics needs `Authorization: Bearer <this>`; unset, /metrics is a 404. A secret (NAME_FILE).
EPHEMERA_METRICS_TOKEN = env("EPHEMERA_METRICS_TOKEN").strip()
if EPHEMERA_METRICS_TOKEN and len(EPHEMERA_METRICS_TOKEN) < 16:
    raise SettingError("EPHEMERA_METRICS_TOKEN is shorter than 16 characters (e.g. openssl rand -hex 32)")
# The worker (run_reaper) is a process of its own: it serves its metrics on this port (0: none).
EPHEMERA_METRICS_PORT = envint("EPHEMERA_METRICS_PORT", 0, minimum=0, maximum=65535)
if EPHEMERA_METRICS_PORT and not EPHEMERA_METRICS_TOKEN:
    raise SettingError("EPHEMERA_METRICS_PORT needs EPHEMERA_METRICS_TOKEN: metrics are never served without it")

# --- Notifications (portal/notifications/, docs/notifications.md) ---------------------
# Every channel is optional; each message links to the portal, so any channel needs the
# portal's address. The URLs and the secret may be given as NAME_FILE and are never logged.
EPHEMERA_BASE_URL = notify_config.base_url(env("EPHEMERA_BASE_URL"))
EPHEMERA_NOTIFY_WEBHOOK_URL = notify_config.http_url("EPHEMERA_NOTIFY_WEBHOOK_URL", env("EPHEMERA_NOTIFY_WEBHOOK_URL"))
EPHEMERA_NOTIFY_WEBHOOK_SECRET = env("EPHEMERA_NOTIFY_WEBHOOK_SECRET")
EPHEMERA_SLACK_WEBHOOK_URL = notify_config.http_url("EPHEMERA_SLACK_WEBHOOK_URL", env("EPHEMERA_SLACK_WEBHOOK_URL"))
EPHEMERA_EMAIL = notify_config.smtp_server(env("EMAIL_URL"))
EPHEMERA_EMAIL_FROM = env("EPHEMERA_EMAIL_FROM")
notify_config.check(base=EPHEMERA_BASE_URL, webhook_url=EPHEMERA_NOTIFY_WEBHOOK_URL, webhook_secret=EPHEMERA_NOTIFY_WEBHOOK_SECRET,
                    slack_url=EPHEMERA_SLACK_WEBHOOK_URL, smtp=EPHEMERA_EMAIL, email_from=EPHEMERA_EMAIL_FROM)
# The longest one delivery attempt may take (connect, send, answer), enforced as a deadline.
EPHEMERA_NOTIFY_TIMEOUT_SECONDS = envint("EPHEMERA_NOTIFY_TIMEOUT_SECONDS", 10, minimum=1, maximum=120)

# LOG_FORMAT=json: one JSON object per line with request id, user and session id (the image's
# default); plain text otherwise. Both are scrubbed of credentials (portal/json_logging.py).
LOG_FORMAT = env("LOG_FORMAT", "plain").strip().lower() or "plain"
if LOG_FORMAT not in ("plain", "json"):
    raise SettingError(f"LOG_FORMAT={LOG_FORMAT!r} must be plain or json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"class": "portal.json_logging.PlainFormatter", "format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"class": "portal.json_logging.JsonFormatter"},
    },
    # An ordinary refusal (a PermissionDenied's 403) is one warning line with its reason, not a
    # traceback (portal/log_filters.py); 5xx keep theirs.
    "filters": {
        "refusal_without_traceback": {"()": "portal.log_filters.RefusalWithoutTraceback"},
        "log_context": {"()": "portal.json_logging.LogContextFilter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["log_context"]}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        "daphne": {"level": "WARNING"},
        "django.channels.server": {"level": "WARNING"},
        "django.request": {"filters": ["refusal_without_traceback"]},
    },
}
