"""The pytest plugin (entry point ``pytest11: supervisor``): fixtures that run the server in-process.

Owns: the fixtures ``make_supervisor`` (factory), ``supervisor_app`` (a default server) and ``connect``
(a client factory on ``supervisor_app``). They need pytest-trio: every server and client runs in a nursery
owned by the fixture, in the test's trio run, and is closed at teardown (clients first, then a graceful
shutdown). Knows nothing of how the server works: it wraps ``server.testing.harness``.

    async def test_echo(connect, autojump_clock):
        client = await connect("c1")
        ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import pytest
import trio

from server.client import Client
from server.testing.harness import SupervisorHandle, start_supervisor


class MakeSupervisor(Protocol):
    def __call__(self, **options: Any) -> Awaitable[SupervisorHandle]: ...


Connect = Callable[..., Awaitable[Client]]


@pytest.fixture
async def make_supervisor() -> AsyncIterator[MakeSupervisor]:
    """``server = await make_supervisor(store="sqlite", agent=MyAgent, close_delay=5, **options)``.

    Starts a server (options as ``server.testing.start_supervisor``) and returns its ``SupervisorHandle``;
    call it several times for several servers. All are shut down at teardown."""
    handles: list[SupervisorHandle] = []
    async with trio.open_nursery() as nursery:

        async def make(**options: Any) -> SupervisorHandle:
            handle = await start_supervisor(nursery, **options)
            handles.append(handle)
            return handle

        try:
            yield make
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(60):
                for handle in reversed(handles):
                    await handle.aclose()
            nursery.cancel_scope.cancel()


@pytest.fixture
async def supervisor_app(make_supervisor: MakeSupervisor) -> SupervisorHandle:
    """A server with the defaults: MemoryStore, the echo agent, no authentication, close_delay 120 s."""
    return await make_supervisor()


@pytest.fixture
def connect(supervisor_app: SupervisorHandle) -> Connect:
    """``client = await connect("conv-1", latest_event_id=-1, token=None)`` on ``supervisor_app``; see
    ``SupervisorHandle.connect``. For a server made with ``make_supervisor`` use ``server.connect``."""
    return supervisor_app.connect
