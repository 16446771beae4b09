"""The browser terminal bridge: browser websocket <-> the debug container's attach stream.

`protocol` is the wire format (docs/terminal-protocol.md), `pump` moves bytes with
coalescing and flow control, `registry` keeps per-session state (the screen tail) so a
reconnect restores the screen. All of it stays in one process: no channel layer per chunk.
"""
