"""What kubesim's container isolation costs: time to start a debug container, and an exec.

    .venv/bin/python bench/kubesim_start.py [--runs 15]

In the same run, twice: once with KUBESIM_ISOLATION=off (containers as plain processes, the
old runtime) and once isolated (namespaces, root filesystem, capabilities: isolation.py).
For each: the ephemeral debug container (busybox, --target of the distroless nginx, as
`kubectl debug` makes it) from start to `running`, and `kubectl exec -- true` as a round
trip over the websocket. Prints medians, p90 and the isolated/plain ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubesim.runtime.harness import Harness, make_pod  # noqa: E402


async def measure(runs: int, isolated: bool) -> dict[str, list[float]]:
    os.environ["KUBESIM_ISOLATION"] = "on" if isolated else "off"
    starts: list[float] = []
    execs: list[float] = []
    async with Harness() as h:
        assert (h.runtime.sandbox is not None) == isolated, "isolation could not be set up here"
        pod = make_pod("web", [{"name": "app", "image": "cgr.dev/chainguard/nginx"}], nodeName="debian-11")
        await h.start_pod(pod)
        await h.wait_running(("default", "web", "app"))
        for i in range(runs):
            name = f"debugger-{i}"
            container = {"name": name, "image": "busybox", "stdin": True, "tty": True, "targetContainerName": "app",
                         "securityContext": {"capabilities": {"add": ["SYS_PTRACE"]}}}
            began = time.perf_counter()
            await h.runtime.start_ephemeral(pod, container)
            await h.wait_running(("default", "web", name), within=30)
            starts.append(time.perf_counter() - began)
            began = time.perf_counter()
            c = await (await h.exec(("default", "web", name), ["true"])).read_to_end()
            execs.append(time.perf_counter() - began)
            assert c.status is not None and c.status["status"] == "Success", c.status
    return {"start": starts, "exec": execs}


def _line(label: str, values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    return f"{label:<34} median {statistics.median(values) * 1000:7.1f} ms   p90 {p90 * 1000:7.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}, {args.runs} runs each")
    plain = asyncio.run(measure(args.runs, isolated=False))
    isolated = asyncio.run(measure(args.runs, isolated=True))
    for what, label in (("start", "debug container start -> running"), ("exec", "exec `true` round trip")):
        print(_line(f"{label} (plain)", plain[what]))
        print(_line(f"{label} (isolated)", isolated[what]))
        ratio = statistics.median(isolated[what]) / statistics.median(plain[what])
        print(f"{'':<34} isolated/plain = {ratio:.2f}")


if __name__ == "__main__":
    main()
