"""EngineServer in-process: requests go straight into ``handle``, websockets are in memory, time is trio's
MockClock. Covers routing, error codes, polling, heartbeat timing, close semantics and CORS (the websocket
side and the upgrade are in test_server_websocket.py)."""

from __future__ import annotations

import json

import pytest
import trio
import trio.testing

from server.engineio import EngineConfig, EngineSocket
from tests.engineio.helpers import Harness, RecordingApp, error_body

FAST = EngineConfig(ping_interval=25, ping_timeout=20)


async def settle() -> None:
    await trio.testing.wait_all_tasks_blocked()


# -- handshake and errors ----------------------------------------------------------------------------------


async def test_polling_handshake(nursery: trio.Nursery) -> None:
    h = await Harness.start(nursery)
    response = await h.request()
    assert response.status == 200
    assert response.content_type == "text/plain; charset=UTF-8"
    assert response.body[:1] == b"0"
    body = json.loads(response.body[1:])
    assert set(body) == {"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"}
    assert body["upgrades"] == ["websocket"]
    assert (body["pingInterval"], body["pingTimeout"], body["maxPayload"]) == (25000, 20000, 1_000_000)
    assert len(body["sid"]) >= 20
    assert h.app.events == [("connect", body["sid"], "polling")]
    assert h.server.get(body["sid"]) is h.app.sockets[body["sid"]]


async def test_sids_are_distinct(nursery: trio.Nursery) -> None:
    h = await Harness.start(nursery)
    sids = {await h.open_polling() for _ in range(20)}
    assert len(sids) == 20


@pytest.mark.parametrize(
    ("method", "query", "status", "code", "message"),
    [
        ("GET", "EIO=4", 400, 0, "Transport unknown"),
        ("GET", "EIO=4&transport=abc", 400, 0, "Transport unknown"),
        ("GET", "EIO=4&transport=polling&sid=nope", 400, 1, "Session ID unknown"),
        ("POST", "EIO=4&transport=polling", 400, 2, "Bad handshake method"),
        ("PUT", "EIO=4&transport=polling", 400, 2, "Bad handshake method"),
        ("GET", "EIO=4&transport=websocket", 400, 3, "Bad request"),
        ("GET", "transport=polling", 400, 5, "Unsupported protocol version"),
        ("GET", "EIO=3&transport=polling", 400, 5, "Unsupported protocol version"),
        ("GET", "EIO=abc&transport=polling", 400, 5, "Unsupported protocol version"),
    ],
)
async def test_error_codes(nursery: trio.Nursery, method: str, query: str, status: int, code: int,
                           message: str) -> None:
    h = await Harness.start(nursery)
    response = await h.request(method, query)
    assert response.status == status
    assert response.content_type == "application/json"
    assert error_body(response) == {"code": code, "message": message}


async def test_transport_not_enabled_is_unknown(nursery: trio.Nursery) -> None:
    h = await Harness.start(nursery, EngineConfig(transports=("websocket",)))
    assert error_body(await h.request())["code"] == 0


async def test_forbidden_origin_is_403_code_4(nursery: trio.Nursery) -> None:
    h = await Harness.start(nursery)
    response = await h.request(headers={"origin": "https://evil.example"})
    assert response.status == 403
    assert error_body(response) == {"code": 4, "message": "Forbidden"}
    ok = await h.request(headers={"origin": "http://example.com"})  # same origin as the Host header
    assert ok.status == 200
    assert ("Access-Control-Allow-Origin", "http://example.com") in ok.headers
    assert ("Access-Control-Allow-Credentials", "true") in ok.headers


async def test_cors_list_and_star(nursery: trio.Nursery) -> None:
    h = await Harness.start(nursery, EngineConfig(cors_allowed_origins=["https://app.example"],
                                                  cors_credentials=False))
    assert (await h.request(headers={"origin": "http://example.com"})).status == 403
    ok = await h.request(headers={"origin": "https://app.example"})
    assert ("Access-Control-Allow-Origin", "https://app.example") in ok.headers
    assert not [v for k, v in ok.headers if k == "Access-Control-Allow-Credentials"]
    star = await Harness.start(nursery, EngineConfig(cors_allowed_origins="*", cors_credentials=False))
    any_origin = await star.request(headers={"origin": "https://anything.example"})
    assert ("Access-Control-Allow-Origin", "*") in any_origin.headers


async def test_cors_preflight(nursery: trio.Nursery) -> None:
    h = await Harness.start(nursery, EngineConfig(cors_allowed_origins=["https://app.example"]))
    response = await h.request("OPTIONS", "EIO=4&transport=polling", headers={
        "origin": "https://app.example", "access-control-request-headers": "content-type"})
    assert response.status == 204
    headers = dict(response.headers)
    assert headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert headers["Access-Control-Allow-Credentials"] == "true"
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert headers["Access-Control-Allow-Headers"] == "content-type"
    refused = await h.request("OPTIONS", "EIO=4&transport=polling", headers={"origin": "https://x.example"})
    assert refused.status == 403


# -- polling -----------------------------------------------------------------------------------------------


async def test_post_ok_and_get_flushes_everything_as_one_payload(nursery: trio.Nursery) -> None:
    h = await Harness.start(nursery)
    sid = await h.open_polling()
    response = await h.post(sid, "4hello\x1ebAQIDBA==\x1e4world")
    assert (response.status, response.body) == (200, b"ok")
    assert h.app.of("message", sid) == ["hello", b"\x01\x02\x03\x04", "world"]
    poll = await h.get(sid)
    assert poll.status == 200
    assert poll.body == b"4hello\x1ebAQIDBA==\x1e4world"


async def test_get_waits_until_something_is_buffered(nursery: trio.Nursery) -> None:
    h = await Harness.start(nursery)
    sid = await h.open_polling()
    pending = h.start_get(sid)
    await settle()
    assert pending == []
    h.app.sockets[sid].send("late")
    await settle()
    assert pending[0].body == b"4late"


async def test_concurrent_get_is_400_and_pending_get_gets_close(nursery: trio.Nursery) -> None:
    h = await Harness.start(nursery)
    sid = await h.open_polling()
    pending = h.start_get(sid)
    await settle()
    second = await h.get(sid)
    assert second.status == 400
    await settle()
    assert pending[0].body == b"1"
    assert (await h.get(sid)).status == 400
    assert h.app.of("disconnect", sid) == ["transport error"]


async def test_concurrent_post_is_400_and_closes(nursery: trio.Nursery) -> None:
    release = trio.Event()

    class SlowApp(RecordingApp):
        async def engine_message(self, sock: EngineSocket, data: str | bytes) -> None:
            await super().engine_message(sock, data)
            await release.wait()

    h = await Harness.start(nursery, app=SlowApp())
    sid = await h.open_polling()
    first: list[int] = []

    async def slow_post() -> None:
        first.append((await h.post(sid, "4a")).status)

    nursery.start_soon(slow_post)
    await settle()
    assert (await h.post(sid, "4b")).status == 400
    release.set()
    await settle()
    assert first == [200]
    assert h.app.of("message", sid) == ["a"]
    assert h.app.of("disconnect", sid) == ["transport error"]
    assert (await h.get(sid)).status == 400


@pytest.mark.parametrize("body", ["abc", "", "4ok\x1e9bad", "b!!", "4ok\x1e"])
async def test_undecodable_post_is_400_and_closes(nursery: trio.Nursery, body: str) -> None:
    h = await Harness.start(nursery)
    sid = await h.open_polling()
    response = await h.post(sid, body)
    assert response.status == 400
    assert error_body(response)["code"] == 3
    assert h.app.of("disconnect", sid) == ["transport error"]
    assert (await h.get(sid)).status == 400


async def test_binary_content_type_post_is_rejected(nursery: trio.Nursery) -> None:
    h = await Harness.start(nursery)
    sid = await h.open_polling()
    response = await h.request("POST", f"EIO=4&transport=polling&sid={sid}", b"\x01",
                               headers={"content-type": "application/octet-stream"})
    assert response.status == 400
    assert h.app.of("disconnect", sid) == ["transport error"]


async def test_post_over_max_payload_is_413(nursery: trio.Nursery) -> None:
    h = await Harness.start(nursery, EngineConfig(max_payload=10))
    sid = await h.open_polling()
    assert (await h.post(sid, "4" + "x" * 10)).status == 413
    await settle()
    assert h.app.of("message", sid) == []
    assert (await h.get(sid)).status == 400


async def test_client_close_with_pending_get(nursery: trio.Nursery) -> None:
    h = await Harness.start(nursery)
    sid = await h.open_polling()
    pending = h.start_get(sid)
    await settle()
    assert (await h.post(sid, "1")).body == b"ok"
    await settle()
    assert pending[0].body == b"6"
    assert h.app.of("disconnect", sid) == ["client disconnect"]
    assert (await h.get(sid)).status == 400


async def test_messages_after_close_in_same_payload_are_dropped(nursery: trio.Nursery) -> None:
    h = await Harness.start(nursery)
    sid = await h.open_polling()
    await h.post(sid, "4a\x1e1\x1e4b")
    assert h.app.of("message", sid) == ["a"]
    assert h.app.of("disconnect", sid) == ["client disconnect"]


async def test_polling_buffer_bound_closes_with_transport_error(nursery: trio.Nursery) -> None:
    h = await Harness.start(nursery, EngineConfig(max_buffered_packets=3))
    sid = await h.open_polling()
    sock = h.app.sockets[sid]
    for i in range(4):
        sock.send(str(i))
    assert sock.closed
    await settle()
    assert h.app.of("disconnect", sid) == ["transport error"]


async def test_server_close_polling_delivers_buffer_then_close_packet(nursery: trio.Nursery) -> None:
    h = await Harness.start(nursery)
    sid = await h.open_polling()
    sock = h.app.sockets[sid]
    sock.send("bye")
    sock.close()
    sock.close()
    sock.send("dropped")
    assert sock.closed
    await settle()
    assert h.app.of("disconnect", sid) == ["server disconnect"]
    assert (await h.get(sid)).body == b"4bye\x1e1"
    assert (await h.get(sid)).status == 400


async def test_server_close_with_pending_get_answers_close(nursery: trio.Nursery) -> None:
    h = await Harness.start(nursery)
    sid = await h.open_polling()
    pending = h.start_get(sid)
    await settle()
    h.app.sockets[sid].close()
    await settle()
    assert pending[0].body == b"1"
    assert h.server.get(sid) is None


async def test_polling_after_linger_is_unknown(nursery: trio.Nursery, autojump_clock: object) -> None:
    h = await Harness.start(nursery, FAST.with_(close_linger=3))
    sid = await h.open_polling()
    h.app.sockets[sid].close()
    await trio.sleep(3.001)
    assert error_body(await h.get(sid))["code"] == 1


# -- heartbeat (MockClock: exact times) ----------------------------------------------------------------------


async def test_polling_ping_and_timeout_at_exact_times(nursery: trio.Nursery, autojump_clock: object) -> None:
    h = await Harness.start(nursery, FAST)
    start = trio.current_time()
    sid = await h.open_polling()
    poll = await h.get(sid)
    assert poll.body == b"2"
    assert trio.current_time() - start == pytest.approx(25)
    await h.app.disconnected.wait()
    assert h.app.of("disconnect", sid) == ["ping timeout"]
    assert h.app.disconnect_times[sid] - start == pytest.approx(45)
    assert h.server.get(sid) is None


async def test_polling_pong_keeps_the_socket_alive(nursery: trio.Nursery, autojump_clock: object) -> None:
    h = await Harness.start(nursery, FAST)
    start = trio.current_time()
    sid = await h.open_polling()
    for i in range(1, 5):
        assert (await h.get(sid)).body == b"2"
        await trio.sleep(5)
        assert (await h.post(sid, "3")).body == b"ok"
        assert trio.current_time() - start == pytest.approx(30 * i)
    assert h.app.of("disconnect") == []
    await h.app.disconnected.wait()  # stop answering: ping at +25, close at +45
    assert h.app.disconnect_times[sid] - start == pytest.approx(120 + 45)


async def test_websocket_ping_and_timeout_at_exact_times(
    nursery: trio.Nursery, autojump_clock: object
) -> None:
    h = await Harness.start(nursery, FAST)
    start = trio.current_time()
    ws = await h.websocket("EIO=4&transport=websocket")
    sid = json.loads(str(ws.sent[0])[1:])["sid"]
    await trio.sleep(25.001)
    assert ws.sent[1:] == ["2"]
    ws.client_send("3")
    await trio.sleep(24.99)
    assert ws.sent[1:] == ["2"]
    await trio.sleep(0.02)
    assert ws.sent[1:] == ["2", "2"]
    await h.app.disconnected.wait()
    assert h.app.of("disconnect", sid) == ["ping timeout"]
    assert h.app.disconnect_times[sid] - start == pytest.approx(25.001 + 25 + 20)
    assert ws.closed


async def test_ping_from_client_closes(nursery: trio.Nursery) -> None:
    h = await Harness.start(nursery)
    sid = await h.open_polling()
    await h.post(sid, "2")
    assert h.app.of("disconnect", sid) == ["transport error"]
