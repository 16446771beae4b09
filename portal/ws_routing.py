"""Every websocket route of the portal, gathered from the apps."""

from approvals.routing import websocket_urlpatterns as approvals_ws
from sessions.routing import websocket_urlpatterns as sessions_ws

websocket_urlpatterns = [*sessions_ws, *approvals_ws]
