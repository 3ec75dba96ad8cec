"""Helpers for the runtime tests: a recording ``emit``, user events, an agent entered for one lifespan.

Everything here drives real processes (bash, python3); nothing is faked.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import trio

from actors.events import StoredEvent
from actors.lifespan import agent_lifespan, create_agent
from actors.runtimes import RuntimeConfig, load_runtime_factory
from actors.runtimes.process import descendants


class Emitted:
    """An ``emit`` that records payloads and gives them increasing ids; ``changed`` fires on each."""

    def __init__(self, first_id: int = 1000) -> None:
        self.payloads: list[dict[str, Any]] = []
        self._next = first_id
        self._changed = trio.Event()

    async def __call__(self, payload: dict[str, Any]) -> StoredEvent:
        self.payloads.append(payload)
        self._next += 1
        self._changed.set()
        self._changed = trio.Event()
        return StoredEvent.create(self._next, payload)

    async def wait_for(self, predicate: Any) -> dict[str, Any]:
        while True:
            for p in self.payloads:
                if predicate(p):
                    return p
            await self._changed.wait()


_ids = iter(range(1, 1_000_000))


def user_event(action: str, **args: Any) -> StoredEvent:
    return StoredEvent.create(next(_ids), {"action": action, "args": args, "source": "user"})


def run_event(command: str, **args: Any) -> StoredEvent:
    return user_event("run", command=command, **args)


@pytest.fixture
def config(tmp_path: Path) -> RuntimeConfig:
    return RuntimeConfig(workspaces_dir=tmp_path / "workspaces", stream_interval=0.2, interrupt_grace=0.5,
                         stop_grace=2.0, default_timeout=20.0)


@asynccontextmanager
async def live_agent(config: RuntimeConfig, spec: str, session_id: str,
                     snapshot: dict[str, Any] | None = None, **changes: Any) -> AsyncIterator[Any]:
    """The agent of ``spec`` for ``session_id``, entered through ``agent_lifespan`` for the block."""
    factory = load_runtime_factory(spec, replace(config, **changes) if changes else config)
    assert factory is not None
    agent = create_agent(factory, session_id)
    async with trio.open_nursery() as nursery, agent_lifespan(agent, snapshot, nursery):
        yield agent


_preexisting: set[int] = set()


@pytest.fixture(autouse=True)
def _processes_before_the_test() -> None:
    """Processes below pytest that other tests' long-lived fixtures own (servers started once per session)
    are not this test's: ``my_descendants`` leaves them out."""
    _preexisting.clear()
    _preexisting.update(descendants(os.getpid()))


def my_descendants() -> set[int]:
    """The live descendants of the test process started since the test began."""
    return descendants(os.getpid()) - _preexisting
