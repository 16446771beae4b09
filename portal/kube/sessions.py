"""Ending a session's debug container, with the cluster's word that it is over.

An ephemeral container can't be deleted. It ends when its main process exits: the runtime
then kills everything left in the container's cgroup. So the stop kills the container's own
processes, and only the pod status saying `terminated` counts as done:

- which processes are the container's comes from the kernel, not from anything a user in
  the shell can rewrite: an exec joins the container's cgroup (runc exec does), and the stop
  script kills every process whose /proc/PID/cgroup equals its own. The target container's
  processes are in another cgroup and are never touched, though they share the PID namespace.
  (The EPHEMERA_SESSION marker in the environment was the old way: a root shell with
  SYS_PTRACE overwrote it in its own memory and lived on.)
- the script runs the debug container's own `sh`, `cat` and `kill`, which a root user in it
  can replace or race. That can't be prevented from outside, so it isn't trusted: the result
  is read back from the API. Until the status says terminated the session is not clean, the
  reaper keeps trying, and after STOP_FINDING_AFTER it raises an oversight finding.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from portal.kube.client import get_client
from portal.kube.errors import KubeError, KubeNotFound

MARKER = "EPHEMERA-STOPPED:"
# The kill is one builtin call at the end: the main process dies with it, and the runtime then
# kills this script too; the marker line printed before tells us it got that far.
STOP_SCRIPT = f"""
self=$$; mine=$(cat /proc/self/cgroup); pids=""
for d in /proc/[0-9]*; do
  pid=${{d#/proc/}}
  [ "$pid" = "$self" ] && continue
  [ "$(cat "$d/cgroup" 2>/dev/null)" = "$mine" ] && pids="$pids $pid"
done
echo "{MARKER}${{pids:- none}}"
[ -n "$pids" ] && kill -9 $pids 2>/dev/null
exit 0
"""
# How long one stop waits for the status to say terminated (the kubelet reports it within a
# second or two of the main process's exit).
CONFIRM_SECONDS = 15.0
EXEC_TIMEOUT_SECONDS = 20.0
REFUSED_CONFIRM_SECONDS = 2.0


class StopFailed(KubeError):
    """The debug container is still running after the stop (or the stop couldn't run)."""


@dataclass(frozen=True)
class Stopped:
    """The cluster confirmed the debug container is over."""

    summary: str
    acted: bool = False  # False: it was already over before this stop


def stop_debug_container(namespace: str, pod: str, container: str, *, confirm_seconds: float = CONFIRM_SECONDS) -> Stopped:
    """End the ephemeral container; return once the pod status says it terminated.

    Raises StopFailed when it is still running (or waiting) after `confirm_seconds`, and
    KubeError when the cluster can't be asked. A pod that is gone counts as stopped.
    """
    client = get_client()
    try:
        state = client.ephemeral_container_state(namespace, pod, container)
    except KubeNotFound:
        return Stopped("pod gone")
    if state.state == "terminated":
        return Stopped(f"debug container {state.describe()}")
    if state.state != "running":
        # Waiting (an image still pulling) or not reported yet: nothing to kill, and nothing can
        # stop it short of deleting the pod; it may yet start, so it is not clean either.
        raise StopFailed(f"the debug container {namespace}/{pod}:{container} is {state.describe()}; it can't be stopped "
                         "before it starts")
    try:
        code, output = client.exec_command(
            namespace, pod, container, ["/bin/sh", "-c", STOP_SCRIPT, "ephemera_stop"], timeout=EXEC_TIMEOUT_SECONDS
        )
        marker = next((line for line in output.splitlines() if line.startswith(MARKER)), None)
        attempt = marker or f"stop script exit {code}: {output.strip()[:200]}"
    except KubeNotFound:
        return Stopped("pod gone")
    except KubeError as exc:
        # Refused, or the stream broke as the container died under it: the status decides,
        # soon (a refused exec changed nothing worth waiting the full time for).
        attempt = exc.message
        confirm_seconds = min(confirm_seconds, REFUSED_CONFIRM_SECONDS)
    deadline = time.monotonic() + confirm_seconds
    while True:
        try:
            state = client.ephemeral_container_state(namespace, pod, container)
        except KubeNotFound:
            return Stopped("pod gone")
        if state.state == "terminated":
            return Stopped(f"debug container {state.describe()} ({attempt or 'stopped'})", acted=True)
        if time.monotonic() >= deadline:
            raise StopFailed(
                f"the debug container {namespace}/{pod}:{container} is still {state.state} after the stop"
                + (f" ({attempt})" if attempt else "")
            )
        time.sleep(0.25)
