"""The sign-in view: Django's LoginView with failed sign-ins throttled (portal.login_throttle)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse

from portal import login_throttle


class ThrottledLoginView(LoginView):
    """Serves /login/ and the admin's /admin/login/, so there is no unthrottled way in."""

    template_name = "portal/login.html"

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        attempt = login_throttle.begin_login(request=request, username=str(request.POST.get("username", "")))
        if attempt.refused_until is not None:
            return self._refused(attempt.refused_until)
        form = self.get_form()
        if form.is_valid():  # checks the password
            login_throttle.login_succeeded(attempt)
            return self.form_valid(form)
        login_throttle.login_failed(attempt)
        if attempt.locked_until is not None:
            return self._refused(attempt.locked_until)
        return self.form_invalid(form)

    def _refused(self, until: datetime) -> HttpResponse:
        # An unbound form: rendering a bound one would validate it, i.e. check the password,
        # and its errors would tell a right password from a wrong one while locked.
        form = self.get_form_class()(self.request)
        context = self.get_context_data(form=form, throttle_message=login_throttle.refusal_message(until))
        response = self.render_to_response(context, status=429)
        response["Retry-After"] = str(login_throttle.retry_minutes(until) * 60)
        return response
