"""`python -m kubesim serve --kubeconfig PATH [--port N] [--state FILE] [--audit-log FILE]`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from kubesim import state as state_mod
from kubesim.server import LOOPBACK, KubeSim


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m kubesim", description="A small simulated Kubernetes API server.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the API server")
    serve.add_argument("--kubeconfig", required=True, help="where to write the kubeconfig (mode 0600)")
    serve.add_argument("--address", default=LOOPBACK, help="listen address; only 127.0.0.1 is accepted")
    serve.add_argument("--port", type=int, default=0, help="listen port (0: pick a free one)")
    serve.add_argument("--state", help="YAML file with nodes, namespaces, pods and users")
    serve.add_argument("--audit-log", help="append one JSON audit event per request to this file")
    serve.add_argument("--pull-delay", type=float, default=0.0, help="seconds an image 'pull' takes")
    serve.add_argument("--plain-http", action="store_true", help="serve HTTP instead of HTTPS (debugging only)")
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> int:
    sim = KubeSim(
        kubeconfig_path=args.kubeconfig,
        host=args.address,
        port=args.port,
        state=state_mod.load(args.state),
        audit_log=args.audit_log,
        plain_http=args.plain_http,
        pull_delay=args.pull_delay,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await sim.start()
    print(f"kubesim ready on {sim.url} kubeconfig={args.kubeconfig}", flush=True)
    await stop.wait()
    # Every process the runtime started goes with us.
    await sim.stop()
    print("kubesim stopped", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.address != LOOPBACK:
        print(f"kubesim: refusing to listen on {args.address}: only {LOOPBACK} is allowed", file=sys.stderr)
        return 2
    return asyncio.run(serve(args))


if __name__ == "__main__":
    sys.exit(main())
