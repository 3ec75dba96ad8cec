"""A pong that arrived while the websocket reader was busy with a message still counts (MockClock)."""

from __future__ import annotations

import trio
import trio.testing

from server.engineio import EngineConfig, EngineSocket
from tests.engineio.helpers import Harness, RecordingApp

FAST = EngineConfig(ping_interval=25, ping_timeout=20)


async def test_a_slow_message_handler_does_not_turn_a_timely_pong_into_a_ping_timeout(
    nursery: trio.Nursery, autojump_clock: object
) -> None:
    class SlowApp(RecordingApp):
        async def engine_message(self, sock: EngineSocket, data: str | bytes) -> None:
            await super().engine_message(sock, data)
            if data == "slow":  # an inline handler, or max_handlers_per_connection backpressure
                await trio.sleep(50)

    h = await Harness.start(nursery, FAST, app=SlowApp(echo=False))
    ws = await h.websocket("EIO=4&transport=websocket")
    await trio.testing.wait_all_tasks_blocked()
    ws.client_send("4slow")

    async def answer_pings() -> None:  # a healthy client: every ping answered within a second
        answered = 0
        while True:
            await trio.sleep(1)
            pings = ws.sent.count("2")
            for _ in range(pings - answered):
                ws.client_send("3")
            answered = pings

    nursery.start_soon(answer_pings)
    await trio.sleep(80)
    assert ws.sent.count("2") >= 1
    assert h.app.of("disconnect") == []  # was "ping timeout" at +45 s: the pong sat unread


async def test_a_silent_client_is_still_closed_once_the_busy_reader_is_back_and_the_grace_is_over(
    nursery: trio.Nursery, autojump_clock: object
) -> None:
    class SlowApp(RecordingApp):
        async def engine_message(self, sock: EngineSocket, data: str | bytes) -> None:
            await super().engine_message(sock, data)
            if data == "slow":
                await trio.sleep(50)

    h = await Harness.start(nursery, FAST, app=SlowApp(echo=False))
    start = trio.current_time()
    ws = await h.websocket("EIO=4&transport=websocket")
    await trio.testing.wait_all_tasks_blocked()
    ws.client_send("4slow")  # busy until +50 s; the ping goes out at +25 s and is never answered
    await trio.sleep(FAST.ping_interval + FAST.ping_timeout + 1 - (trio.current_time() - start))
    assert ws.sent.count("2") == 1
    assert h.app.of("disconnect") == []  # +46 s: the reader is still busy, no verdict yet
    await trio.sleep(50 + FAST.ping_timeout / 2 + 1 - (trio.current_time() - start))
    assert h.app.of("disconnect") == ["ping timeout"]  # back at +50 s, half a timeout of grace, closed
