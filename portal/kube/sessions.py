"""Stopping a session's processes in the cluster.

An ephemeral container can't be deleted, so ending a session kills its processes instead:
every process started for the session carries EPHEMERA_SESSION=<id> in its environment (the
debug container's env, inherited by everything the shell starts), and a busybox-sh script
exec'd into the debug container SIGKILLs each of them except itself. The target container's
processes don't carry the variable and are never touched.
"""

from __future__ import annotations

import re

from portal.kube.client import get_client
from portal.kube.errors import KubeError, KubeNotFound
from portal.kube.specs import SESSION_ENV

# $1 = the session id (passed as an argument, never interpolated into the script).
# The kill is one builtin call at the end: once the debug shell dies the runtime may tear the
# container down, and the marker line printed before it tells us the script got that far.
MARKER = "EPHEMERA-STOPPED:"
STOP_SCRIPT = f"""
id="$1"; self=$$; pids=""
for d in /proc/[0-9]*; do
  pid=${{d#/proc/}}
  [ "$pid" = "$self" ] && continue
  if {{ tr '\\000' '\\n' < "$d/environ"; }} 2>/dev/null | grep -qxF "{SESSION_ENV}=$id"; then pids="$pids $pid"; fi
done
echo "{MARKER}${{pids:- none}}"
[ -n "$pids" ] && kill -9 $pids 2>/dev/null
exit 0
"""

_SESSION_ID = re.compile(r"^[0-9a-fA-F-]{36}$|^[A-Za-z0-9_.-]{1,64}$")


class StopFailed(KubeError):
    """The stop script didn't run to the end."""


def stop_session_processes(namespace: str, pod: str, container: str, session_id: str) -> str:
    """Kill the session's processes; return a short summary. No-op if the container isn't running."""
    if not _SESSION_ID.match(str(session_id)):
        raise ValueError("invalid session id")
    client = get_client()
    try:
        state = client.ephemeral_container_state(namespace, pod, container)
    except KubeNotFound:
        return "pod gone"
    if state.state != "running":
        return f"debug container {state.state}"
    code, output = client.exec_command(
        namespace, pod, container, ["/bin/sh", "-c", STOP_SCRIPT, "ephemera_stop", str(session_id)]
    )
    marker = next((line for line in output.splitlines() if line.startswith(MARKER)), None)
    if code == 0 or (code == -1 and marker is not None):
        return marker or "stopped"
    raise StopFailed(
        f"stopping the debug processes in {namespace}/{pod}:{container} failed (exit {code}): {output.strip()[:300]}"
    )
