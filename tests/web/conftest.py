"""Fixtures for the operator web tests: a real server on a free port with a known admin token."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from server.app import SupervisorApp
from server.config import Config

TOKEN = "web-test-admin-token"


@pytest.fixture
async def app() -> AsyncIterator[SupervisorApp]:
    server = SupervisorApp(Config().override(
        http={"port": 0}, store={"url": "memory://"}, admin={"token": TOKEN}, supervisor={"close_delay": None}
    ))
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        yield server
        await server.shutdown()
