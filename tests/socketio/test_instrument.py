"""Instrumentation hooks (``Server.add_instrumentation``) seen from a real client: python-socketio's own
sync client in a thread, against the whole stack on 127.0.0.1 (polling first, then the websocket upgrade).
"""

from __future__ import annotations

import threading
from typing import Any

import socketio
import trio
from prometheus_client.parser import text_string_to_metric_families

from server.metrics import Metrics
from server.socketio import Handshake, Instrumentation, Server
from server.socketio.instrument import Target
from tests.socketio.test_e2e import WAIT, in_thread, serving


class Recorder(Instrumentation):
    """Records every hook call, in order; overrides only some hooks to show the defaults are no-ops."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.changed = trio.Event()

    def _add(self, *call: Any) -> None:
        self.calls.append(call)
        self.changed.set()
        self.changed = trio.Event()

    def names(self) -> list[str]:
        return [call[0] for call in self.calls]

    def socket_connected(self, sid: str, namespace: str, handshake: Handshake) -> None:
        self._add("socket_connected", sid, namespace, handshake)

    def socket_disconnected(self, sid: str, namespace: str, reason: str) -> None:
        self._add("socket_disconnected", sid, namespace, reason)

    def event_received(self, sid: str, namespace: str, event: Any, args: list[Any]) -> None:
        self._add("event_received", sid, namespace, event, args)

    def event_sent(self, target: Target, namespace: str, event: Any, args: Any) -> None:
        self._add("event_sent", target, namespace, event, args)

    def room_joined(self, sid: str, namespace: str, room: str) -> None:
        self._add("room_joined", sid, namespace, room)

    def room_left(self, sid: str, namespace: str, room: str) -> None:
        self._add("room_left", sid, namespace, room)

    def engine_connected(self, eio_sid: str, transport: str) -> None:
        self._add("engine_connected", eio_sid, transport)

    def engine_disconnected(self, eio_sid: str, reason: str) -> None:
        self._add("engine_disconnected", eio_sid, reason)

    def transport_upgraded(self, eio_sid: str, transport: str) -> None:
        self._add("transport_upgraded", eio_sid, transport)

    async def wait_for(self, name: str) -> tuple[Any, ...]:
        with trio.fail_after(WAIT):
            while True:
                for call in self.calls:
                    if call[0] == name:
                        return call
                await self.changed.wait()


class Broken(Instrumentation):
    def event_received(self, sid: str, namespace: str, event: Any, args: list[Any]) -> None:
        raise RuntimeError("a buggy observer")


def chat_server() -> Server:
    sio = Server(async_handlers=True)

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        sio.enter_room(sid, "lobby")

    @sio.event
    async def shout(sid: str, data: Any) -> str:
        await sio.emit("heard", data, to="lobby")
        sio.leave_room(sid, "lobby")
        return "ok"

    return sio


async def test_hooks_follow_a_real_client_through_its_connection() -> None:
    sio = chat_server()
    recorder = Recorder()
    sio.add_instrumentation(recorder)
    sio.add_instrumentation(Broken())  # its exception is logged, never reaches the server or the others
    heard = threading.Event()
    client = socketio.Client(reconnection=False)
    client.on("heard", lambda data: heard.set())
    async with serving(sio) as url:

        def session() -> Any:
            client.connect(url + "?room=x", auth={"token": "t"}, wait_timeout=WAIT)
            ack = client.call("shout", {"text": "hi"}, timeout=WAIT)
            assert heard.wait(WAIT)
            return ack

        assert await in_thread(session) == "ok"
        _, eio_sid, transport = await recorder.wait_for("engine_connected")
        assert transport == "polling"
        assert await recorder.wait_for("transport_upgraded") == ("transport_upgraded", eio_sid, "websocket")
        _, sid, namespace, handshake = await recorder.wait_for("socket_connected")
        assert namespace == "/"
        assert handshake.eio_sid == eio_sid and handshake.auth == {"token": "t"}
        assert handshake.address == "127.0.0.1" and "room=x" in handshake.query
        assert "HTTP_USER_AGENT" in handshake.headers
        assert await recorder.wait_for("room_joined") == ("room_joined", sid, "/", "lobby")
        received = await recorder.wait_for("event_received")
        assert received == ("event_received", sid, "/", "shout", [{"text": "hi"}])
        assert await recorder.wait_for("event_sent") == ("event_sent", "lobby", "/", "heard", {"text": "hi"})
        assert await recorder.wait_for("room_left") == ("room_left", sid, "/", "lobby")

        await in_thread(client.disconnect)
        # python-socketio's sync client may close its websocket before its DISCONNECT packet leaves (see
        # test_e2e): the server then sees the transport close.
        expected = {"client disconnect", "transport close"}
        _, gone_sid, gone_namespace, reason = await recorder.wait_for("socket_disconnected")
        assert (gone_sid, gone_namespace) == (sid, "/") and reason in expected
        _, closed_sid, engine_reason = await recorder.wait_for("engine_disconnected")
        assert closed_sid == eio_sid and engine_reason in expected
    names = recorder.names()
    assert names.index("engine_connected") < names.index("socket_connected") < names.index("event_received")
    assert names.index("socket_disconnected") < names.index("engine_disconnected")


async def test_no_hook_runs_once_removed_and_none_cost_nothing() -> None:
    sio = chat_server()
    recorder = Recorder()
    sio.add_instrumentation(recorder)
    sio.remove_instrumentation(recorder)
    client = socketio.Client(reconnection=False)
    async with serving(sio) as url:

        def session() -> Any:
            client.connect(url, transports=["websocket"], wait_timeout=WAIT)
            ack = client.call("shout", {"text": "hi"}, timeout=WAIT)
            client.disconnect()
            return ack

        assert await in_thread(session) == "ok"
    assert recorder.calls == []


def scrape(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, _ = metrics.render()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


async def test_metrics_count_socketio_and_engineio_from_the_hooks() -> None:
    sio = chat_server()
    metrics = Metrics()
    sio.add_instrumentation(metrics.socketio)
    recorder = Recorder()  # only to know when the server has seen the upgrade and the close
    sio.add_instrumentation(recorder)
    clients = [socketio.Client(reconnection=False) for _ in range(2)]
    async with serving(sio) as url:

        def polling_then_upgrade() -> None:
            clients[0].connect(url, wait_timeout=WAIT)
            assert clients[0].call("shout", {"n": 1}, timeout=WAIT) == "ok"

        def websocket_only() -> None:
            clients[1].connect(url, transports=["websocket"], wait_timeout=WAIT)
            assert clients[1].call("shout", {"n": 2}, timeout=WAIT) == "ok"
            clients[1].disconnect()

        await in_thread(polling_then_upgrade)
        await in_thread(websocket_only)
        await recorder.wait_for("transport_upgraded")
        await recorder.wait_for("engine_disconnected")
        samples = scrape(metrics)
        assert samples[("supervisor_socketio_connects_total", ())] == 2
        assert samples[("supervisor_socketio_connected", ())] == 1
        disconnects = [
            value for (name, _), value in samples.items() if name == "supervisor_socketio_disconnects_total"
        ]
        assert disconnects == [1]
        assert set(metrics.socketio.disconnects) <= {"client disconnect", "transport close"}
        assert samples[("supervisor_socketio_events_received_total", ())] == 2
        assert samples[("supervisor_socketio_events_sent_total", ())] == 2  # one "heard" to the lobby each
        assert samples[("supervisor_engineio_connections_total", (("transport", "polling"),))] == 1
        assert samples[("supervisor_engineio_connections_total", (("transport", "websocket"),))] == 1
        assert samples[("supervisor_engineio_upgrades_total", ())] == 1
        assert samples[("supervisor_engineio_open", ())] == 1
        await in_thread(clients[0].disconnect)
