"""The `dryRun` option of every write, checked as kube-apiserver checks it.

A dry run goes through everything a real write does (authorization, decoding, defaulting,
validation, admission) and answers the object as it would be stored, but the store is never
written: no resourceVersion moves, no watch event is sent, no container is started. RBAC is the
same as for the real write. The audit log shows it by the requestURI (`?dryRun=All`), exactly
as the apiserver's does; a DeleteOptions body can carry it too (kubectl delete sends it there).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from kubesim.errors import go_string_slice, invalid, not_supported

ALL = "All"
# The options kind the apiserver decodes the query into, per verb: it names the kind in its 422.
OPTIONS_KIND = {"POST": "CreateOptions", "PUT": "UpdateOptions", "PATCH": "PatchOptions", "DELETE": "DeleteOptions"}


def requested(request: web.Request, delete_options: dict[str, Any] | None = None) -> bool:
    """True for dryRun=All, False without dryRun; any other value is the apiserver's 422.

    A DELETE with a DeleteOptions body takes dryRun from the body and ignores the query, as the
    apiserver does (it decodes one or the other).
    """
    if request.method == "DELETE" and delete_options:
        raw = delete_options.get("dryRun")
        values = raw if isinstance(raw, list) else ([] if raw is None else [raw])
    else:
        values = request.query.getall("dryRun", [])
    if not values:
        return False
    if all(v == ALL for v in values):
        return True
    # metav1 validation.ValidateDryRun: an empty value is not "unset", it is unsupported.
    shown = go_string_slice([str(v) for v in values])
    kind = OPTIONS_KIND.get(request.method, "CreateOptions")
    raise invalid(kind, "", [not_supported("dryRun", shown, [ALL])], group="meta.k8s.io")
