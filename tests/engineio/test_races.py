"""Scheduler-order fuzz: concurrent requests of one session, handled in every order hypothesis picks.

The official conformance suites send some requests at the same time; Node answers them in arrival order,
trio runs ready tasks in an order of its own. The answers must not depend on it:

- a poll GET and a close POST (``1``) sent together: the GET gets ``6`` whichever is handled first, and a
  later GET gets 400 (engine.io-protocol "close HTTP long-polling forcefully closes the session");
- ``2probe`` and ``5`` on the probe, then a GET: ``3probe`` reaches the client before any HTTP answer sent
  after it (a 400, or a pending GET's ``6``), even though small websocket frames are held back for write
  coalescing (engine.io-protocol "upgrade ignores HTTP requests with same sid after upgrade").

Each request runs in its own task behind a gate; hypothesis picks the order the gates open and whether the
first request runs to completion before the second starts.
"""

from __future__ import annotations

import json

import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.engineio import EngineConfig, EngineServer
from server.engineio.protocol import SocketProtocol
from server.http.types import Response, WebSocketAccept
from server.http.websocket import WebSocketClosed
from tests.engineio.helpers import Harness, MemoryWebSocket, RecordingApp, make_request

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


async def settle() -> None:
    await trio.testing.wait_all_tasks_blocked()


# -- close POST racing the poll GET --------------------------------------------------------------------


async def _close_race(first: str, run_first_alone: bool) -> None:
    async with trio.open_nursery() as nursery:
        h = await Harness.start(nursery, EngineConfig())
        sid = await h.open_polling()
        gates = {"get": trio.Event(), "post": trio.Event()}
        answers: dict[str, Response] = {}

        async def request(kind: str) -> None:
            await gates[kind].wait()
            answers[kind] = await (h.get(sid) if kind == "get" else h.post(sid, "1"))

        nursery.start_soon(request, "get")
        nursery.start_soon(request, "post")
        await settle()
        second = "post" if first == "get" else "get"
        gates[first].set()
        if run_first_alone:
            await settle()
        gates[second].set()
        await settle()
        assert answers["post"].status == 200 and answers["post"].body == b"ok"
        assert answers["get"].status == 200, (first, run_first_alone, answers["get"])
        assert answers["get"].body == b"6"
        assert (await h.get(sid)).status == 400
        assert h.app.of("disconnect", sid) == ["client disconnect"]
        nursery.cancel_scope.cancel()


@FUZZ
@given(st.sampled_from(["get", "post"]), st.booleans())
def test_close_post_and_poll_get_in_any_order(first: str, run_first_alone: bool) -> None:
    trio.run(_close_race, first, run_first_alone)


def test_close_post_first_is_the_ordering_that_used_to_fail() -> None:
    """The ordering the fuzz must cover: the POST handled to completion before the GET starts."""
    trio.run(_close_race, "post", True)


async def test_client_close_without_get_hands_queued_packets_to_the_next_get(nursery: trio.Nursery) -> None:
    """Had the GET arrived first it would have carried what was queued; so it does when it comes second."""
    h = await Harness.start(nursery)
    sid = await h.open_polling()
    sock = h.app.sockets[sid]
    sock.send("a")
    sock.send("b")
    assert (await h.post(sid, "1")).body == b"ok"
    sock.send("dropped")  # closed: nothing more is queued
    assert (await h.get(sid)).body == b"4a\x1e4b"
    assert (await h.get(sid)).status == 400
    assert h.app.of("disconnect", sid) == ["client disconnect"]


async def test_client_close_linger_ends(nursery: trio.Nursery, autojump_clock: object) -> None:
    config = EngineConfig(client_close_linger=1.0)
    h = await Harness.start(nursery, config)
    sid = await h.open_polling()
    assert (await h.post(sid, "1")).body == b"ok"
    await trio.sleep(config.client_close_linger - 0.01)
    assert h.server.get(sid) is not None
    await trio.sleep(0.02)
    assert h.server.get(sid) is None
    assert (await h.get(sid)).status == 400


# -- the probe answer racing HTTP answers --------------------------------------------------------------


class CoalescingWebSocket(MemoryWebSocket):
    """A MemoryWebSocket that holds frames back until ``flush_pending`` (the write coalescer's callback,
    which the test calls only at the end), appending them to ``wire``: what the client sees, in order."""

    def __init__(self, wire: list[object]) -> None:
        super().__init__()
        self.wire = wire
        self.pending: list[str | bytes] = []

    def send(self, data: str | bytes) -> bool:
        if self.closed:
            return False
        self.pending.append(data)
        return True

    def flush_pending(self) -> bool:
        for data in self.pending:
            self.sent.append(data)
            self.wire.append(("ws", data))
        self.pending.clear()
        return super().flush_pending()


async def _probe_race(get_at: int) -> None:
    """``get_at``: the GET goes before ``2probe`` (0), between ``2probe`` and ``5`` (1), after ``5`` (2)."""
    async with trio.open_nursery() as nursery:
        h = await Harness.start(nursery, EngineConfig())
        sid = await h.open_polling()
        wire: list[object] = []
        ws = CoalescingWebSocket(wire)
        query = f"EIO=4&transport=websocket&sid={sid}"
        accept = await h.server.handle(make_request("GET", query, upgrade=True))
        assert isinstance(accept, WebSocketAccept)

        async def run_probe() -> None:
            try:
                await accept.handler(ws)  # type: ignore[arg-type]
            except WebSocketClosed:
                pass

        async def get() -> None:
            response = await h.get(sid)
            wire.append(("http", response.status, response.body))

        nursery.start_soon(run_probe)
        await settle()
        for step, packet in enumerate(["2probe", "5", None]):
            if step == get_at:
                nursery.start_soon(get)
                await settle()
            if packet is not None:
                ws.client_send(packet)
                await settle()
        http = [item for item in wire if item[0] == "http"]
        assert http == [("http", 400, http[0][2])] if get_at == 2 else [("http", 200, b"6")], (get_at, wire)
        assert ("ws", "3probe") in wire, (get_at, wire)
        assert wire.index(("ws", "3probe")) < wire.index(http[0]), (get_at, wire)
        ws.client_send("4hello")
        await settle()
        ws.flush_pending()
        assert ws.sent == ["3probe", "4hello"]
        assert h.app.sockets[sid].transport == "websocket"
        nursery.cancel_scope.cancel()


@FUZZ
@given(st.integers(min_value=0, max_value=2))
def test_probe_answer_goes_before_concurrent_http_answers(get_at: int) -> None:
    trio.run(_probe_race, get_at)


def test_get_after_upgrade_is_the_ordering_that_used_to_fail() -> None:
    trio.run(_probe_race, 2)


# -- a request racing an overdue heartbeat timer -------------------------------------------------------


async def test_a_get_after_the_ping_timeout_finds_the_sid_gone_even_if_the_timer_is_late(
    autojump_clock: object,
) -> None:
    """The timer queue is not running at all (the extreme of a busy loop): the deadlines that passed are
    still handled before the request, so the GET sees what it would see from Node: the ping, then 400."""
    config = EngineConfig(ping_interval=0.3, ping_timeout=0.2)
    server = EngineServer(RecordingApp(), config)  # no server.run: no timer ever fires by itself

    async def get(query: str) -> Response:
        with trio.fail_after(5):
            response = await server.handle(make_request("GET", query))
        assert isinstance(response, Response)
        return response

    opened = await get("EIO=4&transport=polling")
    sid = json.loads(opened.body[1:])["sid"]
    await trio.sleep(config.ping_interval + 0.01)
    assert (await get(f"EIO=4&transport=polling&sid={sid}")).body == b"2"
    await trio.sleep(config.ping_timeout + 0.01)
    assert (await get(f"EIO=4&transport=polling&sid={sid}")).status == 400
    assert server.get(sid) is None


def test_a_late_ping_timer_does_not_push_the_ping_timeout_back() -> None:
    """The close comes at interval + timeout after the last pong, however late the ping's timer ran
    (engine.io-protocol "closes the session upon ping timeout" polls at exactly that time)."""
    config = EngineConfig(ping_interval=0.3, ping_timeout=0.2)
    proto = SocketProtocol("sid", "polling", config, 0.0)
    proto.on_timer(0.3 + 0.05)  # the ping timer fired 50 ms late
    assert proto.take_outbox() == ["2"]
    assert proto.next_deadline() == 0.3 + 0.2
    proto.on_timer(0.5)
    assert proto.close_reason == "ping timeout"
    late = SocketProtocol("sid", "polling", config, 0.0)
    late.on_timer(0.3 + 0.5)  # later than the whole timeout: the client still gets half of it
    assert late.next_deadline() == 0.8 + 0.1


async def test_a_close_during_the_upgrade_reaches_the_client_over_the_new_websocket() -> None:
    """Between ``3probe`` and ``5`` the client has paused polling: it will read only the websocket. A
    server close then (a refused CONNECT, say) must wait for the switch and go out over it, after what was
    sent before it, as Node's engine.io does; closing the probe instead lost both (the Admin UI, refused
    its first login, then showed "disconnected" instead of the login form)."""
    async with trio.open_nursery() as nursery:
        h = await Harness.start(nursery, EngineConfig())
        sid = await h.open_polling()
        ws = MemoryWebSocket()
        query = f"EIO=4&transport=websocket&sid={sid}"
        accept = await h.server.handle(make_request("GET", query, upgrade=True))
        assert isinstance(accept, WebSocketAccept)

        async def run_probe() -> None:
            try:
                await accept.handler(ws)  # type: ignore[arg-type]
            except WebSocketClosed:
                pass

        nursery.start_soon(run_probe)
        await settle()
        ws.client_send("2probe")
        await settle()
        assert ws.sent == ["3probe"]
        sock = h.app.sockets[sid]
        sock.send("refused")
        sock.close()
        await settle()
        ws.client_send("5")
        await settle()
        assert ws.sent == ["3probe", "4refused"]  # then the websocket closes (no close packet, as in Node)
        assert sock.closed and ws.closed
        nursery.cancel_scope.cancel()
