"""Exit codes (an interface: scripts branch on them) and the one error type commands raise."""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    """What `kubectl ephemera` exits with. Never renumber: scripts depend on these."""

    OK = 0  # done; also: detached, or the session ended by you or by its shell exiting
    ERROR = 1  # the portal refused (bad request, not allowed, not found, already decided) or the session failed
    USAGE = 2  # bad command line
    DENIED = 3  # the request was denied (or withdrawn)
    EXPIRED = 4  # the request expired unanswered, or the session reached its time limit
    TIMEOUT = 5  # --wait-timeout passed before the request was decided or the session ran
    UNREACHABLE = 6  # the portal can't be reached, or answered with a server error
    AUTH = 7  # not logged in, or the token is bad, revoked or throttled
    REVOKED = 8  # an approver or admin ended the session, or withdrew your access while attached
    INTERRUPTED = 130  # Ctrl-C (a pending request is withdrawn first)


EXIT_CODES_HELP = """\
exit codes:
  0  ok (also: detached, or the session ended by you or its shell)
  1  the portal refused (bad request, not allowed, not found, already decided), or the session failed
  2  usage error
  3  denied (or withdrawn)
  4  expired: nobody decided in time, or the session reached its time limit
  5  timed out waiting (--wait-timeout)
  6  the portal is unreachable or failing (network, DNS, TLS, 5xx)
  7  authentication: not logged in, bad/revoked token, too many bad tokens
  8  revoked: an approver or admin ended the session or withdrew your access
  130 interrupted (Ctrl-C; a pending request is withdrawn)"""


class CliError(Exception):
    """A failure to report in one line that says what to do, with its exit code."""

    def __init__(self, message: str, code: Exit = Exit.ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
