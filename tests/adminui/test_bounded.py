"""Many admins watching a busy server: the notices are rate-capped (one emit reaches every admin, nothing
is queued per admin beyond the transport's bound), and an admin that stops reading is cut off."""

from __future__ import annotations

import math
import time
from contextlib import AsyncExitStack
from datetime import datetime
from typing import Any

import pytest
import trio

from server.adminui import AdminUiConfig
from server.app import SupervisorApp
from server.client import open_client
from server.config import Config
from tests.adminui.raw_admin import RawAdmin, raw_admin
from tests.adminui.support import TOKEN

GOOD = {"username": "admin", "password": TOKEN}
ADMINS = 20
BUDGET = 150  # notices per second (all admins together)
MAX_BUFFERED = 64 * 1024  # the server's per-websocket outbound bound in these tests
NOTICES = {"socket_connected", "socket_disconnected", "socket_updated", "room_joined", "room_left",
           "event_received", "event_sent"}
pytestmark = pytest.mark.slow


async def _app(nursery: trio.Nursery, budget: int) -> SupervisorApp:
    server = SupervisorApp(Config().override(
        http={"port": 0, "ws_max_buffered": MAX_BUFFERED}, store={"url": "memory://"},
        supervisor={"close_delay": None},
        admin={"token": TOKEN, "ui": AdminUiConfig(enabled=True, max_events_per_second=budget)},
    ))
    await nursery.start(server.run)
    return server


def _port(app: SupervisorApp) -> int:
    return int(app.url.rsplit(":", 1)[1])


async def _busy_user(app: SupervisorApp, session: str, actions: int, content: str) -> None:
    async with open_client(app.url, query={"conversation_id": session}, reconnect=False) as client:
        async def drain() -> None:
            async for _ in client.events():
                pass

        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain)
            for n in range(actions):
                action = {"action": "message", "args": {"content": f"{content}{n}"}}
                await client.call("oh_user_action", action)
            nursery.cancel_scope.cancel()


def _second(stamp: str) -> int:
    return math.floor(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp())


async def test_twenty_admins_on_a_busy_server_get_the_same_capped_stream(nursery: trio.Nursery) -> None:
    app = await _app(nursery, BUDGET)
    assert app.admin_ui is not None
    async with AsyncExitStack() as stack:
        admins: list[RawAdmin] = [await stack.enter_async_context(raw_admin(_port(app), GOOD))
                                  for _ in range(ADMINS)]
        async with trio.open_nursery() as readers:
            for admin in admins:
                readers.start_soon(admin.read)
            with trio.fail_after(60):
                async with trio.open_nursery() as users:
                    for u in range(4):
                        users.start_soon(_busy_user, app, f"busy-{u}", 150, "x")
            readers.cancel_scope.cancel()
        # Everything forwarded before the traffic ended has reached an admin by the first server_stats
        # emitted after that (one ordered stream per admin).
        after = time.time() - app.started_at
        with trio.fail_after(20):
            for admin in admins:
                await admin.read(until=lambda e: e[0] == "server_stats" and e[1][0]["uptime"] > after)
        admin_sockets = {n["name"]: n["socketsCount"] for n in app.admin_ui.observer.namespaces()}

    assert app.admin_ui.observer.dropped > 0  # the traffic was over the cap, and the cap held
    streams = [[(e, a) for e, a in admin.events if e in NOTICES] for admin in admins]
    last = streams[-1]  # the last admin to log in saw the whole traffic; the others saw more logins first
    assert all(stream[-len(last):] == last for stream in streams)
    per_second: dict[int, int] = {}
    for event, args in streams[0]:
        if event in ("event_received", "event_sent"):
            per_second[_second(args[3])] = per_second.get(_second(args[3]), 0) + 1
    assert per_second and max(per_second.values()) <= BUDGET, per_second
    assert not any(admin.closed for admin in admins)
    assert admin_sockets["/admin"] == ADMINS  # none was cut off
    await app.shutdown()


async def test_an_admin_that_stops_reading_is_cut_off(nursery: trio.Nursery) -> None:
    app = await _app(nursery, 10_000)
    assert app.admin_ui is not None
    observer = app.admin_ui.observer
    async with raw_admin(_port(app), GOOD) as reader, raw_admin(_port(app), GOOD, rcvbuf=4096) as slow:
        async with trio.open_nursery() as readers:
            readers.start_soon(reader.read)
            with trio.fail_after(60):
                # The slow admin reads nothing from now on: each big event reaches it as three notices.
                payload = "y" * 4096
                gone: list[Any] = []
                session = 0
                while not gone:
                    await _busy_user(app, f"heavy-{session}", 40, payload)
                    session += 1
                    gone = [a for a in reader.named("socket_disconnected") if a[1] == slow.sid]
                    assert session < 20, "the slow admin was never cut off"
            readers.cancel_scope.cancel()
        assert gone[0][0] == "/admin" and gone[0][2] == "transport error"  # a slow consumer, dropped
        assert slow.sid not in {s["id"] for s in observer.all_sockets()}
        assert reader.sid in {s["id"] for s in observer.all_sockets()}  # the reading admin is kept
        # Bounded: cut off once the bound plus what the kernel holds is full (a few MB of notices here),
        # not buffered for as long as the traffic lasts (the loop above would go on).
        assert session * 40 * 3 * len(payload) < 10 * 1024 * 1024
    await app.shutdown()
