"""The trio client against python-socketio's AsyncServer on uvicorn (a real server in a subprocess).

Real sockets on 127.0.0.1. Waits are bounded by ``trio.fail_after`` and end on events, never on sleeps; the
only real-time waits are reconnect delays of a few tens of ms and one heartbeat of 0.5 s.
"""

from __future__ import annotations

import socket

import pytest
import trio

from server.client import ConnectError, ConnectionFailedError, DisconnectedError, Event, open_client
from tests.support.servers import PySioServer

FAST_DELAY = 0.02  # reconnect delay base; the cap below keeps real-time waits short
FAST_MAX = 0.1


async def test_connect_sends_query_auth_and_headers(pysio: PySioServer) -> None:
    with trio.fail_after(10):
        async with open_client(
            pysio.url,
            query={"conversation_id": "c1", "latest_event_id": -1},
            auth={"token": "t"},
            headers={"X-Trace": "abc"},
        ) as client:
            me = await client.call("whoami")
            assert me["sid"] == client.namespace_sids["/"]
            assert client.sid and client.sid != me["sid"]  # the Engine.IO sid is not the namespace sid
    assert me["query"] == {"conversation_id": "c1", "latest_event_id": "-1"}
    assert me["auth"] == {"token": "t"}
    assert me["headers"]["x-trace"] == "abc"


async def test_refusal_raises_connect_error_with_message_and_data(pysio: PySioServer) -> None:
    with trio.fail_after(10), pytest.raises(ConnectError) as info:
        async with open_client(pysio.url, auth={"token": "bad"}):
            pytest.fail("must not connect")
    assert info.value.message == "unauthorized"
    assert info.value.data == {"msg_id": "AUTH$ERR"}


async def test_unknown_namespace_is_refused(pysio: PySioServer) -> None:
    with trio.fail_after(10), pytest.raises(ConnectError, match="Unable to connect") as info:
        async with open_client(pysio.url, namespaces=("/", "/nope")):
            pass
    assert info.value.namespace == "/nope"


async def test_nothing_listening_fails_fast_with_connection_failed() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago and has no listener
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with trio.fail_after(10), pytest.raises(ConnectionFailedError):
        async with open_client(f"http://127.0.0.1:{port}"):
            pass


async def test_emit_and_receive_events(pysio: PySioServer) -> None:
    with trio.fail_after(10):
        async with open_client(pysio.url) as client:
            await client.emit("message", "hello")
            await client.emit("message", ("a", 1, {"k": [1, 2]}))
            first = await client.receive(timeout=5)
            second = await client.receive(timeout=5)
            await client.emit("emit-many", 3)
            seq = []
            async for event in client.events():
                seq.append(event.args[0])
                if len(seq) == 3:
                    break
    assert first == Event("message-back", ["hello"], "/")
    name, args, namespace = second
    assert (name, args, namespace) == ("message-back", ["a", 1, {"k": [1, 2]}], "/")
    assert seq == [0, 1, 2]


async def test_receive_times_out(pysio: PySioServer) -> None:
    with trio.fail_after(10):
        async with open_client(pysio.url) as client:
            with pytest.raises(TimeoutError):
                await client.receive(timeout=0.05)


async def test_call_returns_the_ack(pysio: PySioServer) -> None:
    with trio.fail_after(10):
        async with open_client(pysio.url) as client:
            assert await client.call("message-with-ack", "one") == "one"
            assert await client.call("message-with-ack", (1, "two")) == (1, "two")
            assert await client.call("message-with-ack") is None


async def test_server_call_answered_by_a_handler(pysio: PySioServer) -> None:
    async def ask(question: dict[str, int]) -> dict[str, int]:
        return {"double": question["n"] * 2}

    with trio.fail_after(10):
        async with open_client(pysio.url, handlers={"ask": ask}) as client:
            await client.emit("server-call", ("ask", {"n": 21}))
            result = await client.receive(timeout=5)
    assert result == Event("server-call-result", [{"answer": {"double": 42}}], "/")


async def test_server_call_answered_from_the_queue(pysio: PySioServer) -> None:
    with trio.fail_after(10):
        async with open_client(pysio.url) as client:
            await client.emit("server-call", ("question", [1, 2]))
            call = await client.receive(timeout=5)
            assert (call.name, call.args, call.ack_id is not None) == ("question", [[1, 2]], True)
            await client.ack(call, ("x", "y"))
            result = await client.receive(timeout=5)
    assert result.args == [{"answer": ["x", "y"]}]


async def test_binary_both_ways(pysio: PySioServer) -> None:
    blob = bytes(range(256)) * 4
    with trio.fail_after(10):
        async with open_client(pysio.url) as client:
            await client.emit("message", ("file", blob, {"nested": [b"\x00", "text"]}))
            echoed = await client.receive(timeout=5)
            acked = await client.call("message-with-ack", (b"\x01\x02", "plain"))
            await client.emit("server-call", ("want-bytes", None))
            call = await client.receive(timeout=5)
            await client.ack(call, b"\xff\xfe")
            answer = await client.receive(timeout=5)
    assert echoed.args == ["file", blob, {"nested": [b"\x00", "text"]}]
    assert acked == (b"\x01\x02", "plain")
    assert answer.args == [{"answer": b"\xff\xfe"}]


async def test_namespaces_are_separate(pysio: PySioServer) -> None:
    with trio.fail_after(10):
        async with open_client(pysio.url, namespaces=("/", "/custom"), auth={"token": "t"}) as client:
            assert (await client.call("whoami", namespace="/custom"))["namespace"] == "/custom"
            await client.emit("message", "to-custom", namespace="/custom")
            event = await client.receive(timeout=5)
            with pytest.raises(DisconnectedError, match="not connected"):
                await client.emit("message", "x", namespace="/other")
    assert event == Event("message-back", ["to-custom"], "/custom")


async def test_server_side_disconnect_is_detected(pysio: PySioServer) -> None:
    reasons: list[str] = []
    with trio.fail_after(10):
        async with open_client(pysio.url, reconnect=False, handlers={"disconnect": reasons.append}) as client:
            await client.emit("kick")
            assert await client.wait_disconnected() == "io server disconnect"
            with pytest.raises(DisconnectedError):
                await client.receive()
            assert client.closed
    assert reasons == ["io server disconnect"]


async def test_reconnects_after_a_kick_with_the_updated_query(pysio: PySioServer) -> None:
    def bump(client: object, attempt: int) -> None:
        query["latest_event_id"] += 10

    query = {"latest_event_id": 0}
    with trio.fail_after(10):
        async with open_client(
            pysio.url,
            query=query,
            on_reconnect=bump,
            reconnect_delay=FAST_DELAY,
            reconnect_delay_max=FAST_MAX,
        ) as client:
            first = await client.call("whoami")
            await client.emit("kick")
            assert await client.wait_disconnected() == "io server disconnect"
            await client.wait_connected(count=2)
            second = await client.call("whoami")
    assert first["query"]["latest_event_id"] == "0"
    assert second["query"]["latest_event_id"] == "10"
    assert second["sid"] != first["sid"]


async def test_reconnects_after_the_server_closes_the_transport(pysio: PySioServer) -> None:
    with trio.fail_after(10):
        async with open_client(pysio.url, reconnect_delay=FAST_DELAY, reconnect_delay_max=FAST_MAX) as client:
            await client.emit("kick-transport")
            assert await client.wait_disconnected() in ("transport close", "transport error")
            await client.wait_connected(count=2)
            assert await client.call("message-with-ack", 1) == 1


async def test_reconnects_after_a_server_restart(own_pysio: PySioServer) -> None:
    with trio.fail_after(20):
        async with open_client(
            own_pysio.url, reconnect_delay=FAST_DELAY, reconnect_delay_max=FAST_MAX
        ) as client:
            await client.call("whoami")
            await trio.to_thread.run_sync(own_pysio.stop)
            await client.wait_disconnected()
            await trio.to_thread.run_sync(own_pysio.start)  # same port
            await client.wait_connected(count=2)
            assert await client.call("message-with-ack", "back") == "back"


async def test_a_frozen_server_is_detected_by_the_ping_deadline(own_pysio: PySioServer) -> None:
    # own_pysio pings every 0.3 s with a 0.2 s timeout: the client gives up 0.5 s after the last ping
    with trio.fail_after(10):
        async with open_client(
            own_pysio.url, reconnect_delay=FAST_DELAY, reconnect_delay_max=FAST_MAX
        ) as client:
            await client.call("whoami")
            own_pysio.pause()
            try:
                reason = await client.wait_disconnected()
            finally:
                own_pysio.resume()
            assert reason == "ping timeout"
            await client.wait_connected(count=2)
            assert await client.call("message-with-ack", "alive") == "alive"
