"""The configured channel layer survives idle consumers (Redis in CI's second pass)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Run in a fresh interpreter with a plain asyncio.run(), the way Daphne drives consumers.
PROBE = """
import asyncio, django
django.setup()
from channels.layers import get_channel_layer

async def main():
    layer = get_channel_layer()
    channel = await layer.new_channel()
    receiving = asyncio.create_task(layer.receive(channel))
    done, _ = await asyncio.wait({receiving}, timeout=6.5)
    if done:
        raise SystemExit(f"the idle receive ended by itself: {receiving.exception()!r}")
    await layer.send(channel, {"type": "ping"})
    assert await asyncio.wait_for(receiving, 5) == {"type": "ping"}
    print("ok", type(layer).__name__)

asyncio.run(main())
"""


def test_an_idle_receive_outlives_the_layers_blocking_timeout() -> None:
    # channels-redis blocks 5 s per BZPOPMIN; redis-py 8's default read timeout is also 5 s, which
    # killed every consumer that went quiet for 5 s (settings give Redis a 30 s socket_timeout).
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="tests.settings")
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:] + result.stdout
    assert result.stdout.startswith("ok")
