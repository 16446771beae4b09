"""metav1.Status errors, shaped exactly like kube-apiserver's so clients print the same text."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


class ApiError(Exception):
    """An error that becomes a `metav1.Status` response."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body

    def response(self) -> web.Response:
        return web.Response(status=self.code, text=json.dumps(self.status()), content_type="application/json")


def _named(name: str, kind: str) -> dict[str, Any]:
    # The apiserver omits empty fields of StatusDetails.
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    details["kind"] = kind
    return details


def not_found(resource: str, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{resource} "{name}" not found', _named(name, resource))


def path_not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def already_exists(resource: str, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{resource} "{name}" already exists', _named(name, resource))


def conflict(resource: str, name: str, why: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {resource} "{name}": {why}',
        _named(name, resource),
    )


class FieldError:
    """One entry of field.ErrorList; `render` matches apimachinery's field.Error.Error()."""

    _TYPES = {
        "FieldValueRequired": "Required value",
        "FieldValueDuplicate": "Duplicate value",
        "FieldValueForbidden": "Forbidden",
        "FieldValueInvalid": "Invalid value",
        "FieldValueNotFound": "Not found",
        "FieldValueNotSupported": "Unsupported value",
    }

    def __init__(
        self, reason: str, field: str, value: Any = None, detail: str = "", *, has_value: bool = False, shown: str | None = None
    ) -> None:
        self.reason = reason
        self.field = field
        self.value = value
        self.detail = detail
        self.has_value = has_value
        # How Go's %#v prints a value that isn't a scalar (a []string, say), when that matters.
        self.shown = shown

    def body(self) -> str:
        """The part after `field: ` (also the Status cause message)."""
        text = self._TYPES[self.reason]
        if self.shown is not None:
            text += ": " + self.shown
        elif self.has_value:
            text += ": " + (json.dumps(self.value) if isinstance(self.value, str) else _go_value(self.value))
        if self.detail:
            text += ": " + self.detail
        return text

    def render(self) -> str:
        return f"{self.field}: {self.body()}"


def _go_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def required(field: str, detail: str = "") -> FieldError:
    return FieldError("FieldValueRequired", field, detail=detail)


def duplicate(field: str, value: Any) -> FieldError:
    return FieldError("FieldValueDuplicate", field, value, has_value=True)


def forbidden(field: str, detail: str) -> FieldError:
    return FieldError("FieldValueForbidden", field, detail=detail)


def invalid_value(field: str, value: Any, detail: str) -> FieldError:
    return FieldError("FieldValueInvalid", field, value, detail, has_value=True)


def field_not_found(field: str, value: Any) -> FieldError:
    return FieldError("FieldValueNotFound", field, value, has_value=True)


def not_supported(field: str, shown: str, supported: list[str]) -> FieldError:
    """field.NotSupported; `shown` is the bad value as Go prints it."""
    detail = "supported values: " + ", ".join(json.dumps(v) for v in supported)
    return FieldError("FieldValueNotSupported", field, detail=detail, has_value=True, shown=shown)


def go_string_slice(values: list[str]) -> str:
    """A []string as Go's %#v prints it: []string{"a", "b"}."""
    return "[]string{" + ", ".join(json.dumps(v, ensure_ascii=False) for v in values) + "}"


def invalid(kind: str, name: str, errors: list[FieldError], *, group: str = "") -> ApiError:
    # Same aggregation as apierrors.NewInvalid: one error inline, several in brackets.
    if len(errors) == 1:
        text = errors[0].render()
    else:
        text = "[" + ", ".join(e.render() for e in errors) + "]"
    causes = [{"reason": e.reason, "message": e.body(), "field": e.field} for e in errors]
    qualified = f"{kind}.{group}" if group else kind
    # StatusDetails omits empty fields (an options kind has no name, a core kind no group).
    details: dict[str, Any] = {"name": name} if name else {}
    if group:
        details["group"] = group
    details.update({"kind": kind, "causes": causes})
    return ApiError(422, "Invalid", f'{qualified} "{name}" is invalid: {text}', details)


def forbidden_access(user: str, verb: str, resource: str, subresource: str, name: str, namespace: str) -> ApiError:
    """RBAC denial, message identical to the apiserver's authorization failure."""
    full = f"{resource}/{subresource}" if subresource else resource
    subject = f'{resource} "{name}"' if name else resource
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    message = f'{subject} is forbidden: User "{user}" cannot {verb} resource "{full}" in API group "" {scope}'
    return ApiError(403, "Forbidden", message, _named(name, resource))


def forbidden_message(resource: str, name: str, message: str) -> ApiError:
    return ApiError(403, "Forbidden", message, _named(name, resource))


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def method_not_allowed() -> ApiError:
    return ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {})


def gone(requested: int, oldest: int) -> ApiError:
    return ApiError(410, "Expired", f"too old resource version: {requested} ({oldest})")


def unsupported_media_type(content_type: str, accepted: list[str]) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: {', '.join(accepted)}",
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def internal(message: str) -> ApiError:
    return ApiError(500, "InternalError", f"Internal error occurred: {message}", {"causes": [{"message": message}]})


def generic(code: int, message: str) -> ApiError:
    """Used by fault injection: pick the reason the apiserver uses for that code."""
    reasons = {
        400: "BadRequest",
        401: "Unauthorized",
        403: "Forbidden",
        404: "NotFound",
        405: "MethodNotAllowed",
        409: "Conflict",
        410: "Expired",
        415: "UnsupportedMediaType",
        422: "Invalid",
        429: "TooManyRequests",
        500: "InternalError",
        503: "ServiceUnavailable",
        504: "Timeout",
    }
    return ApiError(code, reasons.get(code, "Unknown"), message, {})
