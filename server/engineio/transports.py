"""The polling and websocket transports: trio code that feeds one ``SocketProtocol``.

Owns: answering a polling GET (wait until something is queued, then flush it all as one payload) and POST
(decode the payload, hand each message to the application in order), the websocket reader loop (one
packet per message; the heartbeat deadline is a cancel scope around ``receive()``, so a websocket costs no
task beyond the HTTP connection's own), and the upgrade probe loop. Knows nothing of routing, CORS or
sid allocation (``server.py``); the protocol decisions are ``protocol.py``'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from server.engineio._state import PhaseError
from server.engineio.codec import PROBE_PONG, DecodeError, decode_packet, decode_payload
from server.engineio.protocol import TRANSPORT_CLOSE, TRANSPORT_ERROR, PollStart, ProbeAction
from server.engineio.socket import EngineSocket
from server.http.types import Request, Response
from server.http.websocket import WebSocketClosed

if TYPE_CHECKING:
    from server.http.websocket import WebSocket

TEXT = "text/plain; charset=UTF-8"


def _message_size(raw: str | bytes, limit: int) -> int:
    """Bytes of a websocket message, without encoding a str that cannot be over ``limit``."""
    if isinstance(raw, str) and len(raw) * 4 > limit:
        return len(raw.encode("utf-8"))
    return len(raw)


async def poll(sock: EngineSocket) -> Response | None:
    """A polling GET. None means "overlap": the caller answers 400 (the socket is closed)."""
    proto = sock._proto
    start = proto.poll_begin()
    if start is PollStart.OVERLAP:
        sock._sync()
        return None
    if start is PollStart.WAIT:
        wake = sock._poll_wake = trio.Event()
        try:
            await wake.wait()
        except BaseException:
            # Cancelled: the client went away (or the server is shutting down) with the GET pending.
            if sock._poll_wake is wake:
                sock._poll_wake = None
            if proto.poll_pending:
                proto.poll_abandoned()
                sock._sync()
            raise
    body = proto.poll_take()
    sock._sync()
    return Response(200, body.encode("utf-8"), content_type=TEXT)


async def post(sock: EngineSocket, request: Request) -> bool:
    """A polling POST: each packet in order; messages go to the application in this task. Returns False
    if the request must get a 400 (overlapping POST, binary content, an undecodable packet); the socket
    is closed then."""
    proto = sock._proto
    app = sock._server.app
    if request.headers.get("content-type", "").startswith("application/octet-stream"):
        proto.decode_error()  # v4 sends binary as base64 text; Node rejects this content type too
        sock._sync()
        await sock._notify_disconnect()
        return False
    if not proto.post_begin():
        sock._sync()
        await sock._notify_disconnect()
        return False
    ok = True
    try:
        packets, error = decode_payload(request.body)
        for packet in packets:
            data = proto.receive(packet, trio.current_time())
            sock._sync()
            if data is not None:
                await app.engine_message(sock, data)
            if not proto.open:
                break
        else:
            if error is not None and proto.open:
                proto.decode_error()
                sock._sync()
                ok = False
    finally:
        proto.post_end()
    await sock._notify_disconnect()
    return ok


async def read_websocket(sock: EngineSocket, ws: WebSocket) -> None:
    """The reader loop of a socket whose transport is ``ws``; returns once the socket is closed, after
    ``engine_disconnect``. The heartbeat runs here: ``move_on_at(next_deadline)`` around ``receive()``."""
    proto = sock._proto
    app = sock._server.app
    limit = sock._server.config.max_payload
    try:
        while proto.open:
            with trio.move_on_at(proto.next_deadline()) as scope:
                sock._reader_scope = scope
                try:
                    raw = await ws.receive()
                finally:
                    sock._reader_scope = None
            if scope.cancelled_caught:
                proto.on_timer(trio.current_time())
                sock._sync()
                continue
            if _message_size(raw, limit) > limit:
                proto.abort(TRANSPORT_ERROR)
                sock._sync()
                break
            try:
                packet = decode_packet(raw)
            except DecodeError:
                proto.decode_error()
                sock._sync()
                break
            data = proto.receive(packet, trio.current_time())
            sock._sync()
            if data is not None:
                await app.engine_message(sock, data)
    except WebSocketClosed:
        proto.abort(TRANSPORT_CLOSE)
    finally:
        if proto.open:  # cancelled, or the application raised
            proto.abort(TRANSPORT_CLOSE)
        sock._sync()
        await sock._notify_disconnect_shielded()


async def probe(sock: EngineSocket, ws: WebSocket) -> None:
    """A websocket with the sid of a polling socket: the upgrade. On ``5`` it becomes the transport and
    this task its reader; otherwise it is closed and the socket stays on polling."""
    proto = sock._proto
    try:
        proto.attach_probe(trio.current_time())
    except PhaseError:
        ws.close()  # a second websocket, one after the upgrade, or upgrades disabled
        return
    upgraded = False
    sock._probe_ws = ws
    try:
        while True:
            with trio.move_on_at(proto.upgrade_deadline) as scope:
                sock._reader_scope = scope
                try:
                    raw = await ws.receive()
                finally:
                    sock._reader_scope = None
            if scope.cancelled_caught:  # upgrade_timeout passed, or the socket closed
                break
            try:
                action = proto.receive_probe(decode_packet(raw))
            except DecodeError:
                break
            if action is ProbeAction.REPLY:
                ws.send(PROBE_PONG)
                sock._sync()  # the pending GET is answered "6"
            elif action is ProbeAction.UPGRADED:
                sock._probe_ws = None
                sock._ws = ws
                upgraded = True
                sock._sync()  # flush what waited for the switch
                break
            elif action is ProbeAction.FAILED:
                break
    except WebSocketClosed:
        pass
    finally:
        if not upgraded:
            proto.probe_failed()
            if sock._probe_ws is ws:
                sock._probe_ws = None
            ws.close()
            sock._sync()
    if upgraded:
        await read_websocket(sock, ws)
