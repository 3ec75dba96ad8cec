"""Shared helpers for the actor runtime tests: a recording connection, a running supervisor."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from actors.agent import AgentFactory
from actors.config import SupervisorConfig
from actors.events import OutboundEvent
from actors.messages import Act, ActResult, Join
from actors.reply import Reply
from actors.stores.memory import MemoryStore
from actors.supervisor import CheckpointHook, Supervisor


class FakeConn:
    """A connection handle that records what it is sent. ``capacity`` bounds unconsumed events."""

    def __init__(self, conn_id: str, capacity: int | None = None) -> None:
        self._id = conn_id
        self.capacity = capacity
        self.sent: list[OutboundEvent] = []
        self.consumed = 0
        self.closed: str | None = None
        self._writable = trio.Event()
        self._writable.set()

    @property
    def id(self) -> str:
        return self._id

    def send(self, event: OutboundEvent) -> bool:
        if self.closed is not None:
            return False
        if self.capacity is not None and len(self.sent) - self.consumed >= self.capacity:
            return False
        self.sent.append(event)
        if self.capacity is not None and len(self.sent) - self.consumed >= self.capacity:
            self._writable = trio.Event()
        return True

    def close(self, reason: str) -> None:
        if self.closed is None:
            self.closed = reason
        self._writable.set()

    async def wait_writable(self) -> None:
        await self._writable.wait()

    def consume(self, n: int | None = None) -> None:
        self.consumed = len(self.sent) if n is None else min(len(self.sent), self.consumed + n)
        if self.capacity is None or len(self.sent) - self.consumed < self.capacity:
            self._writable.set()

    @property
    def event_ids(self) -> list[int]:
        return [e.event_id for e in self.sent if e.event_id is not None]

    @property
    def statuses(self) -> list[str]:
        return [e.payload["id"] for e in self.sent if e.event_id is None]

    @property
    def payloads(self) -> list[dict[str, Any]]:
        return [e.payload for e in self.sent if e.event_id is not None]


def user_message(text: str) -> dict[str, Any]:
    return {"action": "message", "args": {"content": text}}


async def act(sup: Supervisor, session_id: str, text: str = "hi", **kw: Any) -> ActResult:
    reply: Reply[ActResult] = Reply()
    await sup.deliver(session_id, Act(kw.pop("conn_id", None), user_message(text), reply, **kw))
    return await reply.get()


async def join(sup: Supervisor, session_id: str, conn_id: str = "c1", latest: int = -1,
               user_id: str | None = None, capacity: int | None = None) -> FakeConn:
    conn = FakeConn(conn_id, capacity)
    await sup.deliver(session_id, Join(conn, latest), user_id=user_id)
    return conn


async def until(predicate: Any, step: float = 0.05) -> None:
    """Poll ``predicate`` on the mock clock (the state changes we wait for have no event to wait on)."""
    while not predicate():  # noqa: ASYNC110
        await trio.sleep(step)


async def settle() -> None:
    """Let every runnable task run (the autojump clock does not advance while tasks are runnable)."""
    await trio.testing.wait_all_tasks_blocked()


@pytest.fixture
async def store() -> AsyncIterator[MemoryStore]:
    async with MemoryStore() as s:
        yield s


@asynccontextmanager
async def running(
    store: Any,
    agent: AgentFactory | None = None,
    *,
    hooks: CheckpointHook | None = None,
    **config: Any,
) -> AsyncIterator[Supervisor]:
    config.setdefault("close_delay_jitter", 0.0)
    sup = Supervisor(store, agent, SupervisorConfig(**config), hooks=hooks)
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        yield sup
        nursery.cancel_scope.cancel()
