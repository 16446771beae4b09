"""Logging filters (configured in LOGGING, portal/settings.py).

Django logs each 403 it answers for a PermissionDenied (and each 400 for a BadRequest) on
`django.request` as a warning with the exception's traceback; a 404 is a plain line already.
For a refusal that is the portal working as meant (a requester opening the approvals queue),
a traceback per page view buries the errors that matter and says less than one line would.
The filter keeps the line and adds the refusal's reason; 5xx records keep their traceback.
"""

from __future__ import annotations

import logging

REASON_MAX = 200


class RefusalWithoutTraceback(logging.Filter):
    """A 4xx record with exc_info becomes one line: the message, then the reason in parentheses."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if not (record.exc_info and isinstance(status, int) and 400 <= status < 500):
            return True
        exc = record.exc_info[1]
        message = record.getMessage()
        reason = _reason(exc)
        # Formatted here, so no handler formats it again with the args.
        record.msg, record.args = (f"{message} ({reason})" if reason else message), None
        record.exc_info, record.exc_text = None, None
        return True


def _reason(exc: BaseException | None) -> str:
    """The exception's own message, when it has one (a string: Resolver404 carries a dict of
    every URL pattern tried, which is no reason), escaped the way Django escapes the path so
    it can't forge a log line."""
    first = exc.args[0] if exc is not None and exc.args else None
    if not isinstance(first, str):
        return ""
    return first[:REASON_MAX].encode("unicode_escape").decode("ascii")
