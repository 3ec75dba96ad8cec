"""The agent interface a session actor drives, and how agents are loaded.

Owns: ``Agent`` (protocol), ``Emit``, ``AgentFactory``, ``agent_message`` (the OpenHands-shaped agent event
payload) and ``load_agent_factory``. Knows nothing of connections, stores or trio tasks: an agent sees the
user's stored events one at a time and answers through ``emit``, which the actor persists and fans out.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from actors.events import StoredEvent

Emit = Callable[[dict[str, Any]], Awaitable[StoredEvent]]
"""``await emit(payload)``: append an agent event (durable), fan it out, return it with its id."""


class Agent(Protocol):
    async def start(self, snapshot: dict[str, Any] | None) -> None:
        """Called once per incarnation, with the state ``snapshot()`` returned at the last passivation."""
        ...

    async def handle(self, event: StoredEvent, emit: Emit) -> None:
        """One turn: react to a user event (already stored and fanned out). May take minutes; runs in a
        child task of the actor, bounded by the turn watchdog. Raising crashes the actor."""
        ...

    def snapshot(self) -> dict[str, Any] | None:
        """JSON-serialisable state to persist at passivation (None: nothing to keep)."""
        ...


AgentFactory = Callable[[], Agent]


def agent_message(content: str, **args: Any) -> dict[str, Any]:
    """An agent ``message`` action payload (the actor adds id, timestamp and source)."""
    return {"action": "message", "message": content, "args": {"content": content, **args}}


def load_agent_factory(spec: str) -> AgentFactory | None:
    """``"echo"`` -> EchoAgent, ``"none"`` -> None (actions persisted and fanned out, nothing answers),
    ``"package.module:ClassName"`` -> that class (called with no arguments per session)."""
    if spec == "none":
        return None
    if spec == "echo":
        from actors.echo import EchoAgent

        return EchoAgent
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"agent must be 'echo', 'none' or 'module:Class', got {spec!r}")
    module = importlib.import_module(module_name)
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{spec} is not callable")
    factory: AgentFactory = obj
    return factory
