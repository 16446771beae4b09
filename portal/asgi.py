"""ASGI entry point (Daphne): Django for HTTP, Channels consumers for websockets.

Every websocket passes the Origin check (AllowedHostsOriginValidator, plus
EPHEMERA_WS_ALLOWED_ORIGINS) and is authenticated from the session cookie or a bearer token.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402  (needs Django set up first)

from portal.ws_auth import websocket_stack  # noqa: E402
from portal.ws_routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": websocket_stack(URLRouter(websocket_urlpatterns)),
    }
)
