"""The Admin UI's view of a real server, fed only by the Socket.IO instrumentation hooks: real gateway
clients (python-socketio) on a ``SupervisorApp`` with ``[admin.ui] enabled``, admins on ``/admin``."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from actors.echo import EchoAgent
from actors.events import StoredEvent
from actors.restart import RestartConfig
from server.adminui import AdminUiConfig
from server.app import SupervisorApp
from server.config import Config
from tests.adminui.support import TOKEN, Admin
from tests.gateway.pysio_client import PySioSession, athread

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
GOOD = {"username": "admin", "password": TOKEN}
BACKOFF = 4.5  # the crashed session waits this long for its restart: more than two server_stats ticks


class CrashingEcho(EchoAgent):
    """The echo agent, which crashes on the message ``boom``."""

    async def handle(self, event: StoredEvent, emit: Any) -> None:
        if event.payload.get("args") == {"content": "boom"}:
            raise RuntimeError("boom")
        await super().handle(event, emit)


@pytest.fixture
async def app(nursery: Any) -> AsyncIterator[SupervisorApp]:
    restart = RestartConfig(backoff_initial=BACKOFF, backoff_max=BACKOFF)
    server = SupervisorApp(Config().override(
        http={"port": 0}, store={"url": "memory://"}, supervisor={"close_delay": None, "restart": restart},
        admin={"token": TOKEN, "ui": AdminUiConfig(enabled=True)},
    ), agent_factory=CrashingEcho)
    await nursery.start(server.run)
    yield server
    await server.shutdown()


async def _admin(app: SupervisorApp) -> Admin:
    admin = Admin(app.url, GOOD)
    await athread(admin.connect)
    await athread(admin.wait_for, "all_sockets")
    return admin


async def test_sockets_data_and_events_from_the_real_hooks(app: SupervisorApp) -> None:
    admin = await _admin(app)
    user = PySioSession()
    await athread(user.connect, app.url, "hooks-s1")
    sid = user.sio.get_sid("/")
    try:
        # The Sockets page: the real client, with the fields the UI's views need.
        (row, stamp) = await athread(admin.wait_until, "socket_connected", lambda a: a[0]["id"] == sid)
        assert row["nsp"] == "/" and row["transport"] == "websocket" and sid in row["rooms"]
        assert ISO.match(stamp) and isinstance(row["handshake"]["issued"], int)
        assert row["handshake"]["query"]["conversation_id"] == "hooks-s1"
        # Its data: the session id and the actor's state, pushed with socket_updated.
        (update,) = await athread(admin.wait_until, "socket_updated", lambda a: "data" in a[0])
        assert update["id"] == sid and update["nsp"] == "/"
        assert update["data"]["sessionId"] == "hooks-s1" and update["data"]["state"] != "passivated"

        # Events in development mode: the action as received, the gateway's pre-encoded oh_event as sent,
        # both as proper event arguments with ISO timestamps.
        assert await athread(user.act, {"action": "message", "args": {"content": "hello"}}) == {"id": 0}
        await athread(user.wait_for_id, 1)
        (nsp, got_sid, received, stamp) = await athread(
            admin.wait_until, "event_received", lambda a: a[2][0] == "oh_user_action")
        assert (nsp, got_sid) == ("/", sid) and ISO.match(stamp)
        assert received == ["oh_user_action", {"action": "message", "args": {"content": "hello"}}]
        (nsp, got_sid, sent, stamp) = await athread(
            admin.wait_until, "event_sent", lambda a: a[2][0] == "oh_event" and a[2][1].get("id") == 1)
        assert (nsp, got_sid) == ("/", sid) and ISO.match(stamp)
        assert isinstance(sent[1], dict) and sent[1]["message"] == "echo: hello" and len(sent) == 2

        # The actor's state changes (its agent crashes, it is restarted): the UI is told with socket_updated.
        user.sio.emit("oh_user_action", {"action": "message", "args": {"content": "boom"}})
        for state in ("crashed", "active"):
            (update,) = await athread(
                admin.wait_until, "socket_updated", lambda a, s=state: a[0].get("data", {}).get("state") == s)
            assert update == {"id": sid, "nsp": "/", "data": {"sessionId": "hooks-s1", "state": state}}
    finally:
        await athread(user.close)
        await athread(admin.close)


async def test_the_admin_socket_is_listed_and_its_traffic_is_not_a_user_event(app: SupervisorApp) -> None:
    first = await _admin(app)
    user = PySioSession()
    await athread(user.connect, app.url, "hooks-s2")
    sid = user.sio.get_sid("/")
    try:
        # Node lists the /admin sockets too: the first admin sees itself arrive, a second one lists it.
        (row, _) = await athread(first.wait_until, "socket_connected", lambda a: a[0]["id"] == first.sid)
        assert row["nsp"] == "/admin"
        second = await _admin(app)
        (listed,) = second.named("all_sockets")[0:1][0]
        by_id = {s["id"]: s for s in listed}
        assert by_id[first.sid]["nsp"] == "/admin" and by_id[sid]["nsp"] == "/"
        assert by_id[sid]["data"] == {"sessionId": "hooks-s2", "state": by_id[sid]["data"]["state"]}

        # An admin's command (and everything the admins are sent) is not a user event.
        first.client.emit("join", ("/", "watched", sid), namespace="/admin")
        await athread(first.wait_until, "room_joined", lambda a: a[:3] == ("/", "watched", sid))
        await athread(second.wait_until, "room_joined", lambda a: a[:3] == ("/", "watched", sid))
        await athread(first.wait_for, "server_stats")
        for admin in (first, second):
            for kind in ("event_received", "event_sent"):
                assert [a for a in admin.named(kind) if a[0] == "/admin"] == [], (kind, admin.named(kind))
        await athread(second.close)
    finally:
        await athread(user.close)
        await athread(first.close)
