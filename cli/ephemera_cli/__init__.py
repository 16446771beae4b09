"""kubectl-ephemera: the Ephemera portal from the engineer's terminal.

Speaks only the portal's public interfaces (the JSON API under /api/v1 and the terminal
websocket, docs/terminal-protocol.md); it imports nothing from the portal.
"""

__version__ = "0.1.0"
