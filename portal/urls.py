"""Top-level URL map: each app brings its own pages; the JSON API lives under /api/."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from portal import token_views
from portal.auth_views import ThrottledLoginView
from portal.health import healthz, readyz
from portal.metrics import metrics_view
from portal.notifications.views import profile
from portal.sso import security_keys
from portal.sso.stepup import reauth_view

urlpatterns = [
    # Answered first by portal.health.ProbeMiddleware; routed here too, so they resolve.
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("login/", ThrottledLoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("oidc/", include("mozilla_django_oidc.urls")),
    path("reauth/", reauth_view, name="reauth"),
    path("profile/", profile, name="profile"),
    path("profile/tokens/", token_views.token_create, name="token_create"),
    path("profile/tokens/<int:token_id>/revoke", token_views.token_revoke, name="token_revoke"),
    path("tokens/", token_views.tokens_all, name="tokens_all"),
    path("profile/keys/options", security_keys.registration_options, name="key_options"),
    path("profile/keys/", security_keys.register, name="key_register"),
    path("profile/keys/<int:key_id>/remove", security_keys.remove, name="key_remove"),
    # Before admin.site.urls: the admin's own login view would be a second, unthrottled way in.
    path("admin/login/", ThrottledLoginView.as_view()),
    path("admin/", admin.site.urls),
    path("api/", include("portal.api_urls")),
    path("sessions/", include("sessions.urls")),
    path("", include("approvals.urls")),
]
