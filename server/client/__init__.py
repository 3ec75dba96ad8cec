"""A trio-native Socket.IO v5 client (websocket transport only), used by the ``supervisor`` CLI and tests.

Owns: the public client API re-exported here. Modules: ``protocol`` (the client role of the server's own
sans-IO Engine.IO v4 and Socket.IO v5 cores, ``server.engineio.protocol`` and ``server.socketio.protocol``:
one protocol implementation for both ends), ``transport`` (trio-websocket messages, URL building),
``backoff`` (reconnect delays), ``connection`` (one live connection: send, read), ``client`` (``Client``:
lifecycle, reader task, acks, handlers, queue), ``context`` (``open_client``), ``errors``.
Must not know about: the server's runtime (``server.http``, the trio glue of ``server.engineio`` and
``server.socketio``, the gateway) or ``actors``; of the server packages it uses the sans-IO cores only.

    async with open_client(url, query={"conversation_id": "c1"}, auth={"token": "t"}) as c:
        await c.emit("oh_user_action", {"action": "message", "args": {"content": "hi"}})
        name, args, namespace = await c.receive(timeout=5)
"""

from .client import Client, Event
from .context import open_client
from .errors import ClientError, ConnectError, ConnectionFailedError, DisconnectedError
from .protocol import ProtocolError
from .transport import Connector, Transport, TransportClosed, TransportError, build_url, websocket_connector

__all__ = [
    "Client",
    "ClientError",
    "ConnectError",
    "ConnectionFailedError",
    "Connector",
    "DisconnectedError",
    "Event",
    "ProtocolError",
    "Transport",
    "TransportClosed",
    "TransportError",
    "build_url",
    "open_client",
    "websocket_connector",
]
