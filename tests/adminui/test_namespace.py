"""The /admin namespace on a real server, driven by python-socketio's client as the Admin UI would."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import bcrypt
import pytest
import socketio
import trio

from server.adminui import AdminUiConfig
from server.adminui.namespace import WRITE_FEATURES
from server.app import SupervisorApp
from server.config import Config
from tests.adminui.support import TOKEN, Admin, login_refused

WAIT = 10.0


@asynccontextmanager
async def _app(config: AdminUiConfig) -> AsyncIterator[SupervisorApp]:
    server = SupervisorApp(Config().override(
        http={"port": 0}, store={"url": "memory://"}, admin={"token": TOKEN, "ui": config},
        supervisor={"close_delay": None},
    ))
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        yield server
        await server.shutdown()


@pytest.fixture
async def app() -> AsyncIterator[SupervisorApp]:
    async with _app(AdminUiConfig(enabled=True)) as server:
        yield server


@pytest.mark.parametrize("auth", [
    {"username": "admin", "password": "wrong"}, {"username": "root", "password": TOKEN}, {},
    {"sessionId": "0123456789abcdef"}, None, {"username": "admin"},
])
async def test_wrong_credentials_get_exactly_invalid_credentials(app: SupervisorApp, auth: Any) -> None:
    message = await trio.to_thread.run_sync(login_refused, app.url, auth)
    assert message == "invalid credentials"


async def test_login_config_session_after_connect_stats_and_reconnect_by_session(app: SupervisorApp) -> None:
    def scenario() -> tuple[Any, ...]:
        admin = Admin(app.url, {"username": "admin", "password": TOKEN})
        admin.connect()
        (config,) = admin.wait_for("config")
        (session_id,) = admin.wait_for("session")
        (sockets,) = admin.wait_for("all_sockets")
        (stats,) = admin.wait_for("server_stats")
        admin.client.disconnect()
        again = Admin(app.url, {"sessionId": session_id})  # what the UI does on a reload
        again.connect()
        again.wait_for("config")
        again.client.disconnect()
        order = [e for e, _ in admin.events]
        return config, session_id, sockets, stats, order, [e for e, _ in again.events]

    config, session_id, sockets, stats, order, again = await trio.to_thread.run_sync(scenario)
    assert set(WRITE_FEATURES) | {"AGGREGATED_EVENTS", "ALL_EVENTS"} == set(config["supportedFeatures"])
    assert len(session_id) == 16 and int(session_id, 16) >= 0
    assert order.index("config") < order.index("session")
    assert isinstance(sockets, list)
    assert stats["serverId"].endswith(f"#{stats['pid']}")
    keys = ("hostname", "uptime", "clientsCount", "pollingClientsCount", "namespaces", "aggregatedEvents")
    assert set(keys) <= set(stats)
    assert "session" not in again  # a reconnect by session id is not a new login


async def test_a_bcrypt_hash_as_the_password() -> None:
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    async with _app(AdminUiConfig(enabled=True, password_hash=hashed)) as app:
        def scenario() -> tuple[str, tuple[Any, ...]]:
            refused = login_refused(app.url, {"username": "admin", "password": TOKEN})
            admin = Admin(app.url, {"username": "admin", "password": "s3cret"})
            admin.connect()
            got = admin.wait_for("config")
            admin.client.disconnect()
            return refused, got

        refused, (config,) = await trio.to_thread.run_sync(scenario)
        assert refused == "invalid credentials"
        assert "AGGREGATED_EVENTS" in config["supportedFeatures"]


async def test_production_and_readonly_features() -> None:
    async with _app(AdminUiConfig(enabled=True, mode="production", readonly=True)) as app:
        def scenario() -> tuple[Any, list[str]]:
            admin = Admin(app.url, {"username": "admin", "password": TOKEN})
            admin.connect()
            (config,) = admin.wait_for("config")
            admin.wait_for("server_stats")
            admin.client.disconnect()
            return config, [e for e, _ in admin.events]

        config, events = await trio.to_thread.run_sync(scenario)
        assert config["supportedFeatures"] == ["AGGREGATED_EVENTS"]
        assert "all_sockets" not in events


async def test_disconnect_command_reaches_the_client(app: SupervisorApp) -> None:
    assert app.admin_ui is not None

    def scenario() -> str:
        user = socketio.Client(reconnection=False)
        gone = threading.Event()
        reasons: list[Any] = []
        user.on("disconnect", lambda *reason: (reasons.append(reason), gone.set()))
        user.connect(app.url + "?conversation_id=s1", transports=["websocket"], wait_timeout=WAIT)
        sid = user.get_sid("/")
        assert sid is not None
        admin = Admin(app.url, {"username": "admin", "password": TOKEN})
        admin.connect()
        admin.wait_for("config")
        admin.client.emit("_disconnect", ("/", False, sid), namespace="/admin")
        assert gone.wait(WAIT), "the client was not disconnected"
        admin.client.disconnect()
        user.disconnect()
        return str(reasons)

    reasons = await trio.to_thread.run_sync(scenario)
    assert "server" in reasons
