"""The cap on connections per client address ([engineio] max_connections_per_address, off by default),
with ``X-Forwarded-For`` believed only from [engineio] trusted_proxies.

Real servers on 127.0.0.1 and the project's websocket Socket.IO client; the address rules on their own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from typing import Any

import pytest
import structlog
import trio

from server.client import Client, ClientError, open_client
from server.config_loading import ConfigError, load_config
from server.engineio import EngineConfig
from server.engineio.address_cap import client_address, parse_networks
from server.socketio import Server


@asynccontextmanager
async def serving(**options: Any) -> AsyncIterator[str]:
    sio = Server()
    async with trio.open_nursery() as nursery:
        http = await nursery.start(partial(sio.serve, "127.0.0.1", 0, engine_config=EngineConfig(**options)))
        yield http.url
        nursery.cancel_scope.cancel()


def connect(url: str, forwarded: str | None = None) -> Any:
    headers = {"X-Forwarded-For": forwarded} if forwarded else None
    return open_client(url, reconnect=False, headers=headers, connect_timeout=5)


async def _refused(url: str, forwarded: str | None = None) -> bool:
    try:
        async with connect(url, forwarded):
            return False
    except ClientError:
        return True


async def test_the_cap_refuses_one_connection_too_many_and_frees_a_slot_on_close() -> None:
    with structlog.testing.capture_logs() as logs:
        async with serving(max_connections_per_address=2) as url, AsyncExitStack() as stack:
            first: Client = await stack.enter_async_context(connect(url))
            await stack.enter_async_context(connect(url))
            assert await _refused(url)
            await first.aclose()
            for _ in range(200):  # the server forgets the closed socket promptly
                if not await _refused(url):
                    break
                await trio.sleep(0.05)
            else:
                pytest.fail("the closed connection's slot never came back")
    refusals = [e for e in logs if e["event"] == "engineio.refused"]
    assert refusals and refusals[0]["reason"] == "too many connections from this address"
    assert refusals[0]["address"] == "127.0.0.1" and refusals[0]["log_level"] == "info"


async def test_no_cap_by_default() -> None:
    async with serving() as url, AsyncExitStack() as stack:
        for _ in range(12):
            await stack.enter_async_context(connect(url))


async def test_forwarded_addresses_count_only_from_trusted_proxies() -> None:
    async with serving(max_connections_per_address=1, trusted_proxies=("127.0.0.1",)) as url, \
            AsyncExitStack() as stack:
        await stack.enter_async_context(connect(url, "203.0.113.5"))
        await stack.enter_async_context(connect(url, "203.0.113.6"))  # another client behind the proxy
        assert await _refused(url, "203.0.113.5")
    async with serving(max_connections_per_address=1) as url, AsyncExitStack() as stack:
        await stack.enter_async_context(connect(url, "203.0.113.5"))
        assert await _refused(url, "203.0.113.6")  # an untrusted peer's header is ignored


def test_client_address_rules() -> None:
    proxies = parse_networks(["10.0.0.0/8", "127.0.0.1"])
    xff = {"x-forwarded-for": "198.51.100.7, 203.0.113.9, 10.1.2.3"}
    assert client_address("127.0.0.1", xff, proxies) == "203.0.113.9"  # nearest untrusted hop
    assert client_address("192.0.2.1", xff, proxies) == "192.0.2.1"  # not a proxy: header ignored
    assert client_address("127.0.0.1", {}, proxies) == "127.0.0.1"
    assert client_address("127.0.0.1", {"x-forwarded-for": "nonsense"}, proxies) == "127.0.0.1"
    assert client_address("127.0.0.1", xff, ()) == "127.0.0.1"


def test_the_config_keys_load_and_are_checked() -> None:
    config = load_config(None, {"SUPERVISOR_ENGINEIO_MAX_CONNECTIONS_PER_ADDRESS": "20",
                                "SUPERVISOR_ENGINEIO_TRUSTED_PROXIES": "10.0.0.0/8,::1"})
    assert config.engineio.max_connections_per_address == 20
    assert config.engineio.trusted_proxies == ("10.0.0.0/8", "::1")
    assert load_config().engineio.max_connections_per_address is None
    with pytest.raises((ConfigError, ValueError)):
        load_config(None, {"SUPERVISOR_ENGINEIO_TRUSTED_PROXIES": "not-an-ip"})
    with pytest.raises((ConfigError, ValueError)):
        load_config(None, {"SUPERVISOR_ENGINEIO_MAX_CONNECTIONS_PER_ADDRESS": "0"})
