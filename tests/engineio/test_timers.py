"""Heartbeats live in the server's one ``actors.timers.TimerQueue``: one entry per socket (polling or
websocket), none left behind by a closed socket, and one entry still after an upgrade. MockClock time."""

from __future__ import annotations

import trio
import trio.testing

from server.engineio import EngineConfig
from tests.engineio.helpers import Harness

FAST = EngineConfig(ping_interval=25, ping_timeout=20)


async def test_each_polling_socket_holds_one_timer_and_traffic_adds_none(
    nursery: trio.Nursery, autojump_clock: object
) -> None:
    h = await Harness.start(nursery, FAST)
    sids = [await h.open_polling() for _ in range(3)]
    assert len(h.server.timers) == 3
    for sid in sids:
        assert (await h.post(sid, "6")).body == b"ok"  # a noop: traffic that does not move the deadline
    assert len(h.server.timers) == 3  # nothing rescheduled
    assert [(await h.get(sid)).body for sid in sids] == [b"2", b"2", b"2"]  # each pinged at +25 s
    assert len(h.server.timers) == 3  # each fired entry replaced by its pong deadline


async def test_a_closed_polling_socket_leaves_no_timer(nursery: trio.Nursery, autojump_clock: object) -> None:
    h = await Harness.start(nursery, FAST)
    sid = await h.open_polling()
    assert (await h.post(sid, "1")).body == b"ok"  # the client closes, no GET pending
    await h.app.disconnected.wait()
    # The sid stays known for client_close_linger (a GET sent with the close gets "6"), then goes.
    assert h.server.get(sid) is not None
    await trio.sleep(FAST.client_close_linger + 0.01)
    assert h.server.get(sid) is None
    await trio.sleep(FAST.ping_interval + 1)  # the cancelled entry's time passes
    assert len(h.server.timers) == 0
    assert h.app.of("disconnect", sid) == ["client disconnect"]


async def test_after_the_upgrade_the_same_timer_entry_keeps_the_heartbeat_on_the_websocket(
    nursery: trio.Nursery, autojump_clock: object
) -> None:
    h = await Harness.start(nursery, FAST)
    start = trio.current_time()
    sid = await h.open_polling()
    probe = await h.websocket(f"EIO=4&transport=websocket&sid={sid}")
    probe.client_send("2probe")
    probe.client_send("5")
    await trio.testing.wait_all_tasks_blocked()
    assert h.app.sockets[sid].transport == "websocket"
    assert len(h.server.timers) == 1  # the socket's entry, still due at +25 s
    await trio.sleep(FAST.ping_interval + 1 - (trio.current_time() - start))
    assert probe.sent == ["3probe", "2"]  # pinged once, on the websocket
    assert len(h.server.timers) == 1  # now the pong deadline
    probe.client_send("3")
    await trio.sleep(FAST.ping_interval + 1)
    assert probe.sent == ["3probe", "2", "2"]  # the next ping, 25 s after the pong
    probe.client_send("3")
    await trio.testing.wait_all_tasks_blocked()
    assert h.app.of("disconnect") == []
    assert len(h.server.timers) == 2  # the next ping, and the pong deadline (cancelled, dropped when due)


async def test_a_websocket_socket_holds_one_timer_traffic_adds_none_and_close_leaves_none(
    nursery: trio.Nursery, autojump_clock: object
) -> None:
    h = await Harness.start(nursery, FAST)
    start = trio.current_time()
    ws = await h.websocket("EIO=4&transport=websocket")
    await trio.testing.wait_all_tasks_blocked()
    assert len(h.server.timers) == 1
    for _ in range(5):
        ws.client_send("4hello")  # messages do not move the deadline: nothing rescheduled
    await trio.testing.wait_all_tasks_blocked()
    assert len(h.server.timers) == 1
    await trio.sleep(FAST.ping_interval + FAST.ping_timeout + 1 - (trio.current_time() - start))
    assert [m for m in ws.sent[1:] if m != "4hello"] == ["2"]  # pinged at +25 s; no pong: closed at +45 s
    assert len(h.server.timers) == 0
    assert h.app.of("disconnect") == ["ping timeout"]
