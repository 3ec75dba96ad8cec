"""The actor runtime's connection handle for one Socket.IO client.

Owns: ``SioConnection``, which implements ``actors.connection.Connection`` on top of
``server.socketio.Server.send_packet_nowait``. It sends every payload as the ``oh_event`` event and lets all
recipients of one ``OutboundEvent`` share one encoding (the event's ``wire`` slot). Knows nothing of
sessions or the gateway's handlers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from actors.events import OutboundEvent

if TYPE_CHECKING:
    from server.socketio import Server

OH_EVENT = "oh_event"


class SioConnection:
    __slots__ = ("_closed", "_id", "_namespace", "_sio")

    def __init__(self, sio: Server, sid: str, namespace: str = "/") -> None:
        self._sio = sio
        self._id = sid
        self._namespace = namespace
        self._closed = False

    @property
    def id(self) -> str:
        return self._id

    @property
    def disconnected(self) -> bool:
        """Closed here, or the client is gone (so a failed send is not a slow consumer; see FanOut)."""
        return self._closed or not self._sio.connected(self._id, self._namespace)

    def send(self, event: OutboundEvent) -> bool:
        if self._closed:
            return False
        return self._sio.send_packet_nowait(
            self._id, self._namespace, OH_EVENT, event.payload, cache=event, json_text=event.json_text
        )

    def close(self, reason: str) -> None:
        """Close the client's whole connection; it reconnects by itself with its latest event id."""
        if not self._closed:
            self._closed = True
            self._sio.close_connection(self._id, reason)

    async def wait_writable(self) -> None:
        await self._sio.wait_writable(self._id)

    def __repr__(self) -> str:
        return f"SioConnection({self._id!r})"
