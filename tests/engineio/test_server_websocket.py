"""EngineServer in-process, the websocket side: sessions, frames, the upgrade from polling and the
application contract (disconnect once, messages in connect, wait_writable, slow consumers)."""

from __future__ import annotations

import json

import pytest
import trio
import trio.testing

from server.engineio import EngineConfig, EngineSocket, OutgoingMessage
from server.http.frames import encode_frame
from tests.engineio.helpers import Harness, RecordingApp, error_body, make_request

FAST = EngineConfig(ping_interval=25, ping_timeout=20)


async def settle() -> None:
    await trio.testing.wait_all_tasks_blocked()




# -- websocket ---------------------------------------------------------------------------------------------


async def test_websocket_session_echo_and_close(nursery: trio.Nursery) -> None:
    h = await Harness.start(nursery)
    ws = await h.websocket("EIO=4&transport=websocket")
    assert str(ws.sent[0]).startswith("0")
    hello = json.loads(str(ws.sent[0])[1:])
    assert hello["upgrades"] == []
    ws.client_send("4hello")
    ws.client_send(b"\x01\x02")
    await settle()
    assert ws.sent[1:] == ["4hello", b"\x01\x02"]
    ws.client_send("1")
    await settle()
    assert h.app.of("disconnect", hello["sid"]) == ["client disconnect"]
    assert ws.closed


@pytest.mark.parametrize("frame", ["abc", "", "9", "b!!"])
async def test_websocket_undecodable_frame_closes(nursery: trio.Nursery, frame: str) -> None:
    h = await Harness.start(nursery)
    ws = await h.websocket("EIO=4&transport=websocket")
    ws.client_send(frame)
    await settle()
    assert ws.closed
    assert [e[2] for e in h.app.events if e[0] == "disconnect"] == ["transport error"]


async def test_websocket_oversize_message_closes(nursery: trio.Nursery) -> None:
    h = await Harness.start(nursery, EngineConfig(max_payload=8))
    ws = await h.websocket("EIO=4&transport=websocket")
    ws.client_send("4" + "x" * 8)
    await settle()
    assert ws.closed
    assert h.app.of("message") == []


async def test_websocket_transport_close(nursery: trio.Nursery) -> None:
    h = await Harness.start(nursery)
    ws = await h.websocket("EIO=4&transport=websocket")
    ws.client_close()
    await settle()
    assert [e[2] for e in h.app.events if e[0] == "disconnect"] == ["transport close"]


async def test_websocket_server_close_from_another_task(nursery: trio.Nursery) -> None:
    h = await Harness.start(nursery)
    ws = await h.websocket("EIO=4&transport=websocket")
    sock = next(iter(h.app.sockets.values()))
    sock.send("last")
    sock.close()
    sock.close()
    await settle()
    assert ws.sent[-1] == "4last"
    assert "1" not in ws.sent  # Node closes the websocket without a close packet
    assert ws.closed
    assert h.app.of("disconnect") == ["server disconnect"]


async def test_outgoing_message_uses_the_shared_frame(nursery: trio.Nursery) -> None:
    h = await Harness.start(nursery)
    ws1 = await h.websocket("EIO=4&transport=websocket")
    ws2 = await h.websocket("EIO=4&transport=websocket")
    sid = await h.open_polling()
    message = OutgoingMessage("fan-out")
    for sock in h.app.sockets.values():
        sock.send(message)
    assert ws1.frames == [encode_frame("4fan-out")]
    assert ws2.frames[0] is ws1.frames[0]
    assert (await h.get(sid)).body == b"4fan-out"


# -- upgrade -----------------------------------------------------------------------------------------------


async def test_upgrade(nursery: trio.Nursery) -> None:
    h = await Harness.start(nursery)
    sid = await h.open_polling()
    sock = h.app.sockets[sid]
    pending = h.start_get(sid)
    await settle()
    probe = await h.websocket(f"EIO=4&transport=websocket&sid={sid}")
    probe.client_send("2probe")
    await settle()
    assert probe.sent == ["3probe"]
    assert pending[0].body == b"6"  # the pending GET is released
    assert (await h.get(sid)).body == b"6"  # and any new one
    sock.send("during upgrade")
    probe.client_send("5")
    await settle()
    assert sock.transport == "websocket"
    assert probe.sent == ["3probe", "4during upgrade"]  # the buffer is flushed over the websocket
    sock.send("after")
    probe.client_send("4echo")
    await settle()
    assert probe.sent[2:] == ["4after", "4echo"]
    assert "6" not in probe.sent
    response = await h.get(sid)  # polling with that sid after the switch
    assert error_body(response) == {"code": 3, "message": "Bad request"}
    assert (await h.post(sid, "4x")).status == 400
    second = await h.websocket(f"EIO=4&transport=websocket&sid={sid}")
    await settle()
    assert second.closed and second.sent == []
    assert not sock.closed
    probe.client_send("1")
    await settle()
    assert h.app.of("disconnect", sid) == ["client disconnect"]


async def test_second_probe_during_upgrade_is_closed(nursery: trio.Nursery) -> None:
    h = await Harness.start(nursery)
    sid = await h.open_polling()
    probe = await h.websocket(f"EIO=4&transport=websocket&sid={sid}")
    second = await h.websocket(f"EIO=4&transport=websocket&sid={sid}")
    assert second.closed and not probe.closed


async def test_unfinished_probe_is_dropped_after_upgrade_timeout(nursery: trio.Nursery,
                                                                 autojump_clock: object) -> None:
    h = await Harness.start(nursery, EngineConfig(upgrade_timeout=10, ping_interval=100, ping_timeout=100))
    sid = await h.open_polling()
    start = trio.current_time()
    probe = await h.websocket(f"EIO=4&transport=websocket&sid={sid}")
    probe.client_send("2probe")
    await trio.sleep(9.99)
    assert not probe.closed
    await trio.sleep(0.02)
    assert probe.closed
    assert trio.current_time() - start == pytest.approx(10.01)
    sock = h.app.sockets[sid]
    assert sock.transport == "polling" and not sock.closed
    sock.send("still polling")
    assert (await h.get(sid)).body == b"4still polling"


async def test_probe_with_wrong_packet_is_dropped(nursery: trio.Nursery) -> None:
    h = await Harness.start(nursery)
    sid = await h.open_polling()
    probe = await h.websocket(f"EIO=4&transport=websocket&sid={sid}")
    probe.client_send("4hello")
    await settle()
    assert probe.closed
    assert h.app.sockets[sid].transport == "polling"
    assert h.app.of("message") == []


async def test_socket_close_during_probe_closes_probe(nursery: trio.Nursery) -> None:
    h = await Harness.start(nursery)
    sid = await h.open_polling()
    probe = await h.websocket(f"EIO=4&transport=websocket&sid={sid}")
    h.app.sockets[sid].close()
    await settle()
    assert probe.closed


async def test_upgrade_request_with_polling_transport_is_400(nursery: trio.Nursery) -> None:
    h = await Harness.start(nursery)
    response = await h.server.handle(make_request("GET", "EIO=4&transport=polling", upgrade=True))
    assert response.status == 400  # type: ignore[union-attr]


# -- the application contract ------------------------------------------------------------------------------


async def test_disconnect_exactly_once_whatever_closes_it(nursery: trio.Nursery) -> None:
    h = await Harness.start(nursery)
    sid = await h.open_polling()
    sock = h.app.sockets[sid]
    sock.close()
    await h.post(sid, "1")
    sock.close("again")
    await settle()
    assert h.app.of("disconnect", sid) == ["server disconnect"]


async def test_messages_sent_in_connect_follow_the_open_packet(nursery: trio.Nursery) -> None:
    class Greeter(RecordingApp):
        async def engine_connect(self, sock: EngineSocket) -> None:
            await super().engine_connect(sock)
            sock.send("welcome")

    h = await Harness.start(nursery, app=Greeter())
    sid = await h.open_polling()
    assert (await h.get(sid)).body == b"4welcome"
    ws = await h.websocket("EIO=4&transport=websocket")
    assert str(ws.sent[0]).startswith("0") and ws.sent[1] == "4welcome"


async def test_polling_wait_writable_blocks_until_the_get_drains(nursery: trio.Nursery) -> None:
    h = await Harness.start(nursery, EngineConfig(max_buffered_packets=4))
    sid = await h.open_polling()
    sock = h.app.sockets[sid]
    sock.send("a")
    sock.send("b")
    released: list[bool] = []

    async def writer() -> None:
        await sock.wait_writable()
        released.append(True)

    nursery.start_soon(writer)
    await settle()
    assert released == []
    assert (await h.get(sid)).body == b"4a\x1e4b"
    await settle()
    assert released == [True]


async def test_websocket_slow_consumer_closes_with_transport_error(nursery: trio.Nursery) -> None:
    h = await Harness.start(nursery)
    ws = await h.websocket("EIO=4&transport=websocket")
    sock = next(iter(h.app.sockets.values()))
    ws.close(1008)  # what the HTTP layer does when its bounded buffer overflows
    sock.send("too much")
    await settle()
    assert sock.closed
    assert h.app.of("disconnect") == ["transport error"]
