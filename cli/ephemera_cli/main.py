"""`kubectl ephemera`: the command line (flag names follow `kubectl debug`; they are an interface)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, NoReturn

from ephemera_cli import __version__, commands, play
from ephemera_cli.errors import EXIT_CODES_HELP, CliError, Exit

PROG = "kubectl ephemera"

DESCRIPTION = """\
Just-in-time kubectl debug through Ephemera: ask for a debug shell, wait for an approver,
use it here; approve, deny, end and extend from the terminal too.

  kubectl ephemera login https://ephemera.example.com --token TOKEN
  kubectl ephemera debug web-7d9c -n shop --target=web --image=busybox --reason "INC-1234 502s" --duration 30m
  kubectl ephemera debug node/worker-3 --profile=sysadmin --reason "disk full" --ticket INC-1234
  kubectl ephemera get requests
  kubectl ephemera approve REQUEST -m "go"
  kubectl ephemera play SESSION --speed 2

In the shell, Ctrl-P Ctrl-Q detaches (the shell keeps running): kubectl ephemera attach SESSION
returns to it."""

LOGIN_HELP = """\
Store the portal's URL and an API token in $XDG_CONFIG_HOME/ephemera/config.json (default
~/.config/ephemera/config.json, mode 0600). The token is checked with the portal first.
Without --token it is read from a prompt (or from stdin when piped), so it stays out of your
shell history. EPHEMERA_URL and EPHEMERA_TOKEN, when set, take the file's place.

Single sign-on in the browser (a device-code flow) is not there yet: get a token from your
portal's admins or `manage.py create_api_token USER` (`make token USER=...` next to the demo)."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line that says what to do, instead of argparse's usage dump.
        self.exit(Exit.USAGE, f"kubectl-ephemera: {message}; see: {self.prog} --help\n")


def _output_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", choices=["json"], help="json: the portal's JSON objects, for scripts")


def _wait_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wait-timeout", metavar="DURATION",
                   help="give up waiting after this long (e.g. 10m), exit 5; default: until decided")


def build_parser() -> Parser:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = Parser(prog=PROG, description=DESCRIPTION, epilog=EXIT_CODES_HELP, formatter_class=fmt)
    parser.add_argument("--version", action="version", version=f"kubectl-ephemera {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True

    p = sub.add_parser("login", help="store the portal URL and your API token (SSO in the browser: not yet)", description=LOGIN_HELP,
                       epilog=EXIT_CODES_HELP, formatter_class=fmt)
    p.add_argument("url", metavar="URL")
    p.add_argument("--token", help="the API token (omit to be prompted)")
    p.add_argument("--allow-http", action="store_true", help="allow plain http to a host other than this machine")
    p.set_defaults(run=commands.login)

    p = sub.add_parser(
        "debug", help="ask for a debug shell, wait for approval, attach", epilog=EXIT_CODES_HELP, formatter_class=fmt,
        description="Shows the policy that applies, creates the request, shows its approvals as they come, then "
                    "attaches like kubectl debug -it. Ctrl-C while waiting withdraws the request.",
    )
    p.add_argument("target_object", metavar="POD | pod/POD | node/NAME")
    p.add_argument("-n", "--namespace", help="the pod's namespace (default: default)")
    p.add_argument("--target", help="the container in the pod whose processes the debug container sees")
    p.add_argument("--image", default="busybox", help="the debug image (default: busybox)")
    p.add_argument("--profile", default="general", choices=["general", "baseline", "restricted", "netadmin", "sysadmin"],
                   help="kubectl debug's profile (default: general)")
    p.add_argument("--reason", required=True, help="why: the approvers read it")
    p.add_argument("--ticket", help="the incident or change ticket, when the policy asks for one")
    p.add_argument("--duration", default="30m", help="how long, e.g. 30m or 1h (default: 30m)")
    p.add_argument("--copy-to", nargs="?", const="", metavar="NAME",
                   help="debug a copy of the pod, as kubectl debug --copy-to (for a container that crashes at start); "
                        "the copy's name is Ephemera's to choose (<pod>-debug-xxxxx), so NAME is ignored")
    p.add_argument("--share-processes", action=argparse.BooleanOptionalAction, default=None,
                   help="with --copy-to: one process namespace for the copy (default: yes, as kubectl)")
    p.add_argument("--same-node", action="store_true", help="with --copy-to: the copy on the pod's node")
    p.add_argument("--set-image", help="with --copy-to: container=image[,...] ('*' for all), as kubectl")
    p.add_argument("--target-command", help="with --copy-to: the --target container's command in the copy, "
                                            "e.g. 'sleep infinity'")
    p.add_argument("--no-wait", action="store_true", help="create the request, print its id and exit")
    # kubectl debug's -i/-t/-it: accepted so muscle memory works; the shell is always interactive.
    p.add_argument("-i", "--stdin", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("-t", "--tty", action="store_true", help=argparse.SUPPRESS)
    _wait_flag(p)
    _output_flag(p)
    p.set_defaults(run=commands.debug)

    p = sub.add_parser("attach", help="attach to your running session (or wait for a request's)",
                       epilog=EXIT_CODES_HELP, formatter_class=fmt)
    p.add_argument("id", metavar="SESSION", help="a session id (or a request id: waits for its session)")
    _wait_flag(p)
    p.set_defaults(run=commands.attach_cmd)

    p = sub.add_parser("get", help="list requests or sessions", epilog=EXIT_CODES_HELP, formatter_class=fmt)
    p.add_argument("resource", choices=["requests", "request", "sessions", "session"])
    p.add_argument("id", nargs="?", metavar="ID", help="just this one")
    p.add_argument("--status", help="only these (requests: e.g. pending; sessions: running unless given, or ended, failed...)")
    p.add_argument("-n", "--namespace", help="sessions: only those on pods in this namespace")
    _output_flag(p)
    p.set_defaults(run=commands.get)

    p = sub.add_parser("approve", help="approve a request (or an extension)", epilog=EXIT_CODES_HELP, formatter_class=fmt)
    p.add_argument("id", metavar="ID")
    p.add_argument("-m", "--message", help="a comment the requester sees")
    _output_flag(p)
    p.set_defaults(run=commands.approve)

    p = sub.add_parser("deny", help="deny a request (or an extension)", epilog=EXIT_CODES_HELP, formatter_class=fmt)
    p.add_argument("id", metavar="ID")
    p.add_argument("-m", "--message", required=True, help="why (required): the requester sees it")
    _output_flag(p)
    p.set_defaults(run=commands.deny)

    p = sub.add_parser("end", help="end a session now", epilog=EXIT_CODES_HELP, formatter_class=fmt)
    p.add_argument("session", metavar="SESSION")
    p.add_argument("--reason", "-m", help="why (required when it is someone else's session)")
    _output_flag(p)
    p.set_defaults(run=commands.end)

    p = sub.add_parser("extend", help="ask for more time on your session", epilog=EXIT_CODES_HELP, formatter_class=fmt)
    p.add_argument("session", metavar="SESSION")
    p.add_argument("duration", metavar="DURATION", help="how much more, e.g. 15m")
    p.add_argument("--reason", required=True, help="why: the approvers read it")
    _output_flag(p)
    p.set_defaults(run=commands.extend)

    p = sub.add_parser(
        "play", help="replay a session's recording in this terminal", epilog=EXIT_CODES_HELP, formatter_class=fmt,
        description="Downloads the session's recording (asciicast v2, the portal's .cast download) and plays its\n"
                    "output with the recorded timing, like asciinema play. The output is written as the shell\n"
                    "printed it; the portal's markers show as `[ephemera] marker: ...` lines. Ctrl-C stops.\n"
                    "Auditors, admins and the session's requester may play it.",
    )
    p.add_argument("session", metavar="SESSION")
    p.add_argument("--speed", type=float, default=1.0, metavar="N", help="play N times as fast (default: 1)")
    p.add_argument("--idle-limit", type=float, default=2.0, metavar="SECONDS",
                   help="cap every pause at this many seconds, 0 for none (default: 2)")
    p.add_argument("--no-wait", action="store_true", help="print the output at once, without the pauses")
    p.add_argument("-o", "--output", choices=["json"],
                   help="json: the header, then every event as [time, code, data], one JSON line each, no pauses")
    p.set_defaults(run=play.play)
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], Coroutine[Any, Any, Exit]] = args.run
    try:
        return int(asyncio.run(handler(args)))
    except CliError as exc:
        print(f"kubectl-ephemera: {exc.message}", file=sys.stderr)
        return int(exc.code)
    except KeyboardInterrupt:
        print("kubectl-ephemera: interrupted", file=sys.stderr)
        return int(Exit.INTERRUPTED)


def main() -> NoReturn:
    sys.exit(run())
