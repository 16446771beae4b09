"""A fast fake apiserver for the relay benchmark: every attach is a tiny "shell" over v5.channel.k8s.io.

    .venv/bin/python bench/fake_upstream.py --port 0 --kubeconfig /tmp/fake.kubeconfig

Not a cluster: any websocket upgrade on any path is accepted (bearer token not checked) and
answered as an attached tty would, so the portal's relay (Daphne, consumer, pump, recorder)
is the only thing measured, not kubesim or a real shell. What it does with stdin:
  - echoes every byte typed (as a tty in echo mode), Ctrl-C prints `^C` and a new prompt;
  - at Enter, a line `flood KIND BYTES; echo X` streams BYTES of KIND output (`seq`: what
    `seq 1 N` prints through a tty; `zeros`: `a` repeated) as fast as the connection takes
    it, then prints X; `echo X` alone prints X (two quotes removed, as the shell would).
Output is sent in 64 KiB frames, each awaited, so TCP back-pressure from the portal holds it.
Prints `fake upstream ready on http://127.0.0.1:PORT` once listening; SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

from aiohttp import WSMsgType, web

STDIN, STDOUT, RESIZE = 0, 1, 4
FRAME = 64 * 1024
PROMPT = b"/ # "


def seq_block(start: int, size: int) -> tuple[bytes, int]:
    """`seq` output from `start` through a tty (CRLF), at least `size` bytes; (bytes, next start)."""
    lines = []
    n = start
    total = 0
    while total < size:
        line = b"%d\r\n" % n
        lines.append(line)
        total += len(line)
        n += 1
    return b"".join(lines), n


# Made once: formatting `seq` lines as it floods would make this fake slower than the portal.
SEQ, _ = seq_block(1, 8 * 1024 * 1024)
ZEROS = b"a" * FRAME


async def flood(ws: web.WebSocketResponse, kind: str, size: int) -> None:
    sent = 0
    source = memoryview(ZEROS if kind == "zeros" else SEQ)
    offset = 0
    while sent < size:
        if offset >= len(source):
            offset = 0
        block = source[offset : offset + min(FRAME, size - sent)]
        offset += len(block)
        await ws.send_bytes(bytes([STDOUT]) + block)
        sent += len(block)


async def run_line(ws: web.WebSocketResponse, line: str) -> None:
    for part in (p.strip() for p in line.split(";")):
        words = part.split()
        if len(words) == 3 and words[0] == "flood" and words[2].isdigit():
            await flood(ws, words[1], int(words[2]))
        elif words[:1] == ["echo"]:
            await ws.send_bytes(bytes([STDOUT]) + " ".join(words[1:]).replace("''", "").encode() + b"\r\n")
    await ws.send_bytes(bytes([STDOUT]) + PROMPT)


async def attach(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(protocols=("v5.channel.k8s.io",), max_msg_size=0, compress=False)
    await ws.prepare(request)
    try:
        await shell(ws)
    except ConnectionError:  # the portal closed the stream mid-flood: the end of that attach
        pass
    return ws


async def shell(ws: web.WebSocketResponse) -> None:
    await ws.send_bytes(bytes([STDOUT]) + PROMPT)
    line = bytearray()
    async for msg in ws:
        if msg.type != WSMsgType.BINARY or not msg.data or msg.data[0] != STDIN:
            continue  # resize, close-stdin and anything else: nothing to draw
        for byte in msg.data[1:]:
            if byte == 3:  # Ctrl-C
                line.clear()
                await ws.send_bytes(bytes([STDOUT]) + b"^C\r\n" + PROMPT)
            elif byte in (13, 10):
                text = line.decode("utf-8", "replace")
                line.clear()
                await ws.send_bytes(bytes([STDOUT]) + b"\r\n")
                await run_line(ws, text)
            elif byte == 0x15:  # Ctrl-U
                line.clear()
            else:
                line.append(byte)
                await ws.send_bytes(bytes([STDOUT, byte]))


def write_kubeconfig(path: Path, url: str) -> None:
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: fake\n"
        f"clusters: [{{name: fake, cluster: {{server: '{url}'}}}}]\n"
        "users: [{name: fake, user: {token: not-checked}}]\n"
        "contexts: [{name: fake, context: {cluster: fake, user: fake, namespace: default}}]\n"
    )


async def serve(port: int, kubeconfig: Path | None) -> None:
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", attach)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    bound = runner.addresses[0][1]
    url = f"http://127.0.0.1:{bound}"
    if kubeconfig is not None:
        write_kubeconfig(kubeconfig, url)
    print(f"fake upstream ready on {url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--kubeconfig", type=Path, help="write a kubeconfig pointing at this server here")
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.kubeconfig))


if __name__ == "__main__":
    main()
