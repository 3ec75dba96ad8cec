"""An agent's incarnation as an async context manager: what it owns lives exactly as long as the block.

Owns: ``agent_lifespan`` (the adapter the actor enters when an incarnation starts and exits when it ends),
``LifespanAgent`` (the protocol of agents that own resources), ``AnyAgent``, ``SessionAgentFactory`` and
``create_agent`` (factories that need the session id, such as the shell runtime's). Knows nothing of
actors, stores, connections or transports; it sees an agent, its snapshot and a nursery.

Theory of operation. An agent may implement ``lifespan(snapshot, nursery)``, an async context manager: on
enter it restores its state from ``snapshot`` and starts what it owns (tasks in ``nursery``, processes
through ``actors.runtimes.process.owned_process``); on exit it stops them. The actor calls ``handle`` and
``snapshot`` only inside the block. Agents with only ``start(snapshot)`` (the original protocol) keep
working: the adapter awaits ``start`` on enter and does nothing of theirs on exit.

``nursery`` is not the caller's nursery: the adapter starts, in the caller's nursery, one task holding a
nursery of the agent's own, and hands that one to the agent. So on exit, after the agent's own exit code has
run, the adapter cancels every task the agent left there and waits for them (a task holding a process ends it
with its grace period, shielded). A task of the agent that raises crashes the caller's nursery, that is the
actor's incarnation, which is what a crash of the agent should do.

Exit order: the agent's ``lifespan`` exit (graceful: close stdin, SIGTERM, grace, SIGKILL) -> cancel the
agent's remaining tasks and wait for them -> return. Snapshotting before exit is the actor's job.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol, runtime_checkable

import trio

from actors.agent import Agent, AgentFactory, Emit
from actors.events import StoredEvent


@runtime_checkable
class LifespanAgent(Protocol):
    """An agent that owns resources for one incarnation: ``lifespan`` instead of ``Agent.start``."""

    def lifespan(
        self, snapshot: dict[str, Any] | None, nursery: trio.Nursery
    ) -> AbstractAsyncContextManager[None]:
        """Restore from ``snapshot`` and start what the agent owns (tasks in ``nursery``) on enter; stop them
        on exit. The actor calls ``handle`` and ``snapshot`` only inside the block."""
        ...

    async def handle(self, event: StoredEvent, emit: Emit) -> None: ...

    def snapshot(self) -> dict[str, Any] | None: ...


AnyAgent = Agent | LifespanAgent
"""What an actor may hold: an agent of the original protocol or one with a lifespan."""


@runtime_checkable
class SessionAgentFactory(Protocol):
    """A factory that needs to know which session the agent serves (its workspace, its log fields)."""

    def for_session(self, session_id: str) -> AnyAgent: ...


def create_agent(factory: AgentFactory | SessionAgentFactory, session_id: str) -> AnyAgent:
    """The agent for ``session_id``: ``factory.for_session(session_id)`` if the factory has it, else
    ``factory()`` (every factory written for the original protocol)."""
    for_session = getattr(factory, "for_session", None)
    if for_session is not None:
        agent: AnyAgent = for_session(session_id)
        return agent
    assert callable(factory)
    return factory()


class _OwnedTasks:
    __slots__ = ("done", "nursery")

    def __init__(self, nursery: trio.Nursery, done: trio.Event) -> None:
        self.nursery = nursery
        self.done = done


async def _hold_nursery(*, task_status: trio.TaskStatus[_OwnedTasks]) -> None:
    done = trio.Event()
    try:
        async with trio.open_nursery() as nursery:
            task_status.started(_OwnedTasks(nursery, done))
            await trio.sleep_forever()
    finally:
        done.set()


@asynccontextmanager
async def agent_lifespan(
    agent: AnyAgent, snapshot: dict[str, Any] | None, nursery: trio.Nursery
) -> AsyncIterator[None]:
    """Enter ``agent`` for one incarnation (restored from ``snapshot``); exiting ends all it owned.

    ``nursery`` must live at least as long as the block (the actor's incarnation nursery). Raises what the
    agent's start raises; on exit, re-raises what the agent's own exit raises, after its tasks are gone."""
    owned: _OwnedTasks = await nursery.start(_hold_nursery)
    try:
        lifespan = getattr(agent, "lifespan", None)
        if lifespan is not None:
            async with lifespan(snapshot, owned.nursery):
                yield
        else:
            await agent.start(snapshot)  # type: ignore[union-attr]
            yield
    finally:
        owned.nursery.cancel_scope.cancel()
        with trio.CancelScope(shield=True):
            await owned.done.wait()
