"""One live connection of the trio client, and the values the client hands to its caller.

Owns: ``Connection`` (a transport + its ``ClientProtocol`` + a send lock, so a binary packet's attachments
go out contiguously; reading one message as protocol events, within the heartbeat deadline),
``PendingCall`` (an ack being waited for), ``ConnectionEnded`` (why a connection is over, as a JS-style
reason string), and ``Event`` (what ``Client.receive`` returns).

Must not know about: reconnection, handlers, queues, or how a transport is opened.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
import trio

from .errors import DisconnectedError
from .protocol import ClientProtocol, ProtocolError, ProtocolEvent
from .transport import Transport, TransportClosed

__all__ = ["Connection", "ConnectionEnded", "Event", "PendingCall", "maybe_await"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Event:
    """An event the server sent. Unpacks as ``name, args, namespace = event``.

    ``ack_id`` is set when the server called (asked for an ack): answer with ``await client.ack(event, ...)``.
    ``connection`` is the ``connect_count`` of the connection it arrived on.
    """

    name: str
    args: list[Any]
    namespace: str = "/"
    ack_id: int | None = None
    connection: int = field(default=0, compare=False)

    def __iter__(self) -> Iterator[Any]:
        return iter((self.name, self.args, self.namespace))


class PendingCall:
    __slots__ = ("args", "done", "error", "generation")

    def __init__(self, generation: int) -> None:
        self.generation = generation
        self.done = trio.Event()
        self.args: list[Any] = []
        self.error: BaseException | None = None


class Connection:
    """One live transport and its protocol state; sends multi-message packets atomically."""

    __slots__ = ("generation", "log", "protocol", "send_lock", "transport")

    def __init__(self, transport: Transport, generation: int) -> None:
        self.transport = transport
        self.protocol = ClientProtocol()
        self.generation = generation
        self.send_lock = trio.StrictFIFOLock()  # a binary packet's attachments must follow it contiguously
        self.log = log.bind(generation=generation)

    async def send(self, messages: Sequence[str | bytes]) -> None:
        if not messages:
            return
        try:
            async with self.send_lock:
                for message in messages:
                    await self.transport.send(message)
        except TransportClosed as exc:
            raise DisconnectedError(f"connection lost while sending: {exc.reason}") from exc

    async def read(self, *, handshake: bool) -> list[ProtocolEvent]:
        """The events of the next message, once the automatic replies it asks for (pongs) are sent.

        During the handshake a lost transport, a silent server or a protocol error is raised as it is
        (``TransportClosed``, ``trio.TooSlowError``, ``ProtocolError``: the attempt failed); afterwards each
        ends the connection with ``ConnectionEnded`` and the JS client's reason."""
        message: str | bytes | None = None
        with trio.move_on_at(self.protocol.heartbeat.deadline):
            try:
                message = await self.transport.receive()
            except TransportClosed as exc:
                if handshake:
                    raise
                raise ConnectionEnded(exc.reason) from None
        if message is None:
            if handshake:
                raise trio.TooSlowError("ping timeout during the handshake")
            raise ConnectionEnded("ping timeout")
        try:
            events = self.protocol.receive(message, trio.current_time())
        except ProtocolError as exc:
            self.log.warning("client.protocol_error", error=str(exc))
            if handshake:
                raise
            raise ConnectionEnded("parse error") from None
        try:
            await self.send(self.protocol.data_to_send())
        except DisconnectedError:
            if handshake:
                raise TransportClosed("transport close") from None
            raise ConnectionEnded("transport close") from None
        return events


class ConnectionEnded(Exception):
    """The current connection is over; ``reason`` is the JS client's word for why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value
