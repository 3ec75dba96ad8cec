"""The trio client's lifecycle against a scripted in-memory server, on trio's MockClock.

Heartbeat deadlines, reconnect backoff, give-up, refusal on reconnect, call timeouts, the bounded queue, the
clean close and exception propagation: all exact in virtual time, no sockets.
"""

from __future__ import annotations

import pytest
import trio

from server.client import Client, ConnectError, ConnectionFailedError, DisconnectedError, open_client
from tests.support.memory_transport import MemoryConnector, ServerEnd

URL = "http://memory.test"


async def test_pongs_keep_the_connection_alive_and_silence_ends_it_at_interval_plus_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    connector = MemoryConnector()
    last_ping = 0.0
    ends: list[ServerEnd] = []

    async def server() -> None:
        nonlocal last_ping
        end = await connector.accepted.receive()
        ends.append(end)
        await end.handshake(ping_interval_ms=300, ping_timeout_ms=200)
        for _ in range(3):
            await trio.sleep(0.3)
            await end.send("2")
            last_ping = trio.current_time()
            assert await end.receive() == "3"
        # now the server goes silent

    async with trio.open_nursery() as nursery:
        nursery.start_soon(server)
        async with open_client(URL, connector=connector, reconnect=False) as client:
            with trio.fail_after(60):  # without a heartbeat deadline this would wait forever
                reason = await client.wait_disconnected()
            assert reason == "ping timeout"
            assert trio.current_time() == pytest.approx(last_ping + 0.5)
            assert not client.connected
            with pytest.raises(DisconnectedError):
                await client.emit("late")
    assert ends[0].closed.is_set()


async def test_reconnect_backs_off_exponentially_and_rereads_the_query(
    autojump_clock: trio.testing.MockClock,
) -> None:
    connector = MemoryConnector()
    state = {"latest_event_id": -1}
    hook_calls: list[int] = []

    async def server() -> None:
        first = await connector.accepted.receive()
        await first.handshake(ping_interval_ms=60_000, ping_timeout_ms=60_000)
        await first.send('42["oh_event",{"id":5}]')
        # the client has processed the event once it answers a ping
        await first.send("2")
        assert await first.receive() == "3"
        connector.refuse_next = 2
        first.close()
        second = await connector.accepted.receive()
        await second.handshake()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(server)
        async with open_client(
            URL,
            connector=connector,
            query=lambda: dict(state),
            reconnect_delay=1.0,
            reconnect_delay_max=4.0,
            randomization_factor=0,
            on_reconnect=lambda client, attempt: hook_calls.append(attempt),
        ) as client:
            name, args, _ = await client.receive()
            assert (name, args) == ("oh_event", [{"id": 5}])
            state["latest_event_id"] = args[0]["id"]
            lost_at = trio.current_time()
            assert await client.wait_disconnected() == "transport close"
            await client.wait_connected(count=2)
            assert client.connect_count == 2

    delays = [attempt["time"] - lost_at for attempt in connector.attempts[1:]]
    assert delays == pytest.approx([1.0, 3.0, 7.0])  # waits of 1, 2, 4 s between the three attempts
    assert hook_calls == [1, 2, 3]
    assert "latest_event_id=-1" in connector.attempts[0]["url"]
    assert "latest_event_id=5" in connector.attempts[-1]["url"]


async def test_gives_up_after_max_attempts(autojump_clock: trio.testing.MockClock) -> None:
    connector = MemoryConnector()

    async def server() -> None:
        end = await connector.accepted.receive()
        await end.handshake()
        connector.refuse_next = 100
        end.close()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(server)
        async with open_client(URL, connector=connector, max_attempts=2, reconnect_delay=0.1) as client:
            with pytest.raises(DisconnectedError, match="gave up after 2"):
                await client.receive()
            assert client.closed
            with pytest.raises(DisconnectedError):
                await client.wait_connected()
            with pytest.raises(DisconnectedError):
                async for _ in client.events():
                    pass
    assert len(connector.attempts) == 3


async def test_refusal_on_reconnect_calls_connect_error_and_stops(
    autojump_clock: trio.testing.MockClock,
) -> None:
    connector = MemoryConnector()
    errors: list[tuple[str, object]] = []

    async def server() -> None:
        first = await connector.accepted.receive()
        await first.handshake()
        first.close()
        second = await connector.accepted.receive()
        await second.send('0{"sid":"x","upgrades":[],"pingInterval":300,"pingTimeout":200}')
        assert await second.receive() == '40{"token":"t"}'
        await second.send('44{"message":"token expired","data":{"msg_id":"EXPIRED"}}')

    async with trio.open_nursery() as nursery:
        nursery.start_soon(server)
        async with open_client(URL, connector=connector, auth={"token": "t"}, reconnect_delay=0.1) as client:
            client.on("connect_error", lambda message, data: errors.append((message, data)))
            with pytest.raises(DisconnectedError) as info:
                await client.receive()
            assert isinstance(info.value.__cause__, ConnectError)
    assert errors == [("token expired", {"msg_id": "EXPIRED"})]


async def test_refusal_at_open_raises_connect_error_with_data(autojump_clock: trio.testing.MockClock) -> None:
    connector = MemoryConnector()

    async def server() -> None:
        end = await connector.accepted.receive()
        await end.send('0{"sid":"x","upgrades":[],"pingInterval":300,"pingTimeout":200}')
        await end.receive()
        await end.send('44{"message":"unauthorized","data":{"msg_id":"AUTH"}}')

    async with trio.open_nursery() as nursery:
        nursery.start_soon(server)
        with pytest.raises(ConnectError) as info:
            async with open_client(URL, connector=connector):
                pytest.fail("must not get here")
    assert (info.value.message, info.value.data) == ("unauthorized", {"msg_id": "AUTH"})


async def test_a_server_that_never_opens_fails_the_first_connect_after_connect_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    connector = MemoryConnector()
    start = trio.current_time()
    with pytest.raises(ConnectionFailedError, match="connect timeout"):
        async with open_client(URL, connector=connector, connect_timeout=3.0):
            pass
    assert trio.current_time() - start == pytest.approx(3.0)


async def test_call_times_out_and_a_lost_connection_fails_pending_calls(
    autojump_clock: trio.testing.MockClock,
) -> None:
    connector = MemoryConnector()
    drop = trio.Event()

    async def server() -> None:
        end = await connector.accepted.receive()
        await end.handshake(ping_interval_ms=60_000, ping_timeout_ms=60_000)
        assert await end.receive() == '421["slow"]'
        assert await end.receive() == '422["never"]'
        await drop.wait()
        end.close()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(server)
        async with open_client(URL, connector=connector, reconnect=False) as client:
            start = trio.current_time()
            with pytest.raises(TimeoutError):
                await client.call("slow", timeout=2.5)
            assert trio.current_time() - start == pytest.approx(2.5)

            async def drop_soon() -> None:
                await trio.sleep(1)
                drop.set()

            nursery.start_soon(drop_soon)
            with pytest.raises(DisconnectedError, match="before the ack"):
                await client.call("never", timeout=100)


async def test_bounded_queue_applies_backpressure_without_losing_events(
    autojump_clock: trio.testing.MockClock,
) -> None:
    connector = MemoryConnector()

    async def server() -> None:
        end = await connector.accepted.receive()
        await end.handshake(ping_interval_ms=60_000, ping_timeout_ms=60_000)
        for i in range(20):
            await end.send(f'42["seq",{i}]')

    async with trio.open_nursery() as nursery:
        nursery.start_soon(server)
        async with open_client(URL, connector=connector, queue_size=2) as client:
            await trio.sleep(1)  # let the server send everything while nobody reads
            assert client._events.statistics().current_buffer_used == 2
            got = [(await client.receive(timeout=1)).args[0] for _ in range(20)]
    assert got == list(range(20))


async def test_garbage_from_the_server_ends_the_connection_with_parse_error_and_reconnects(
    autojump_clock: trio.testing.MockClock,
) -> None:
    connector = MemoryConnector()

    async def server() -> None:
        first = await connector.accepted.receive()
        await first.handshake()
        await first.send("42[not json")
        second = await connector.accepted.receive()
        await second.handshake()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(server)
        async with open_client(URL, connector=connector, reconnect_delay=0.1) as client:
            assert await client.wait_disconnected() == "parse error"
            await client.wait_connected(count=2)


async def test_exit_leaves_every_namespace_then_closes(autojump_clock: trio.testing.MockClock) -> None:
    connector = MemoryConnector()
    received: list[str | bytes] = []

    async def server() -> None:
        end = await connector.accepted.receive()
        await end.handshake()
        await end.accept_connects(1)
        try:
            while True:
                received.append(await end.receive())
        except trio.EndOfChannel:
            received.append("<closed>")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(server)
        async with open_client(URL, connector=connector, namespaces=("/", "/custom")) as client:
            assert set(client.namespace_sids) == {"/", "/custom"}
            await client.emit("bye", namespace="/custom")
    assert received == ['42/custom,["bye"]', "41", "41/custom,", "<closed>"]


async def test_handler_return_value_answers_a_server_call(autojump_clock: trio.testing.MockClock) -> None:
    connector = MemoryConnector()
    answers: list[str | bytes] = []

    async def server() -> None:
        end = await connector.accepted.receive()
        await end.handshake()
        await end.send('42/,7["add",1,2]')
        answers.append(await end.receive())
        await end.send('428["divmod",7,2]')
        answers.append(await end.receive())
        await end.send('429["unhandled"]')
        answers.append(await end.receive())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(server)

        async def divmod_handler(a: int, b: int) -> tuple[int, int]:
            return divmod(a, b)

        handlers = {"add": lambda a, b: a + b, "divmod": divmod_handler}
        async with open_client(URL, connector=connector, handlers=handlers) as client:
            event = await client.receive()
            assert event.ack_id == 9
            await client.ack(event, {"ok": True})
            with pytest.raises(ValueError):
                await client.ack(event.__class__("x", [], "/"))
            await trio.sleep(1)
    assert answers == ["437[3]", "438[3,1]", '439[{"ok":true}]']


async def test_an_exception_in_the_body_comes_out_unwrapped(autojump_clock: trio.testing.MockClock) -> None:
    connector = MemoryConnector()

    async def server() -> None:
        end = await connector.accepted.receive()
        await end.handshake()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(server)
        with pytest.raises(KeyError, match="boom"):
            async with open_client(URL, connector=connector):
                raise KeyError("boom")


async def test_an_exception_in_a_handler_stops_the_client_and_comes_out(
    autojump_clock: trio.testing.MockClock,
) -> None:
    connector = MemoryConnector()

    async def server() -> None:
        end = await connector.accepted.receive()
        await end.handshake()
        await end.send('42["explode",1]')

    def explode(arg: int) -> None:
        raise RuntimeError(f"handler failed on {arg}")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(server)
        with pytest.raises(RuntimeError, match="handler failed on"):
            async with open_client(URL, connector=connector, handlers={"explode": explode}):
                await trio.sleep_forever()


async def test_async_reconnect_hook_can_change_auth(autojump_clock: trio.testing.MockClock) -> None:
    connector = MemoryConnector()
    connects: list[str | bytes] = []

    async def server() -> None:
        first = await connector.accepted.receive()
        connects.extend(await first.handshake())
        first.close()
        second = await connector.accepted.receive()
        connects.extend(await second.handshake())

    async def refresh(client: Client, attempt: int) -> None:
        await trio.sleep(0.5)  # e.g. fetch a new token
        client.auth = {"token": f"fresh-{attempt}"}

    async with trio.open_nursery() as nursery:
        nursery.start_soon(server)
        async with open_client(
            URL, connector=connector, auth={"token": "old"}, on_reconnect=refresh
        ) as client:
            await client.wait_connected(count=2)
    assert connects == ['40{"token":"old"}', '40{"token":"fresh-1"}']


async def test_closing_while_waiting_to_reconnect_returns_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    connector = MemoryConnector()

    async def server() -> None:
        end = await connector.accepted.receive()
        await end.handshake()
        connector.refuse_next = 100
        end.close()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(server)
        async with open_client(
            URL, connector=connector, reconnect_delay=1000, reconnect_delay_max=1000
        ) as client:
            await client.wait_disconnected()
            closing_at = trio.current_time()
    assert trio.current_time() == closing_at
    assert len(connector.attempts) == 1
