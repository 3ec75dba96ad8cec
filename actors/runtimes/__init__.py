"""Runtimes: agents that own processes for one incarnation (a per-session shell, agents in other processes).

Owns: ``load_runtime_factory`` (the ``--agent shell`` and ``--agent 'exec:COMMAND ARGS'`` specs) and the
re-exports below. Knows nothing of ``server/``: the CLI passes the ``runtime`` configuration section in.
"""

from __future__ import annotations

import shutil

import trio

from actors.runtimes.config import RuntimeConfig
from actors.runtimes.exec_agent import ExecAgent, ExecAgentError, ExecAgentFactory
from actors.runtimes.shell_agent import ShellAgent, ShellAgentFactory, workspace_name
from actors.runtimes.status import (
    RUNTIME_STARTED,
    STARTING_RUNTIME,
    AgentState,
    agent_state_changed,
    runtime_started_status,
    starting_runtime_status,
)

__all__ = [
    "RUNTIME_STARTED",
    "STARTING_RUNTIME",
    "AgentState",
    "ExecAgent",
    "ExecAgentError",
    "ExecAgentFactory",
    "RuntimeConfig",
    "ShellAgent",
    "ShellAgentFactory",
    "agent_state_changed",
    "delete_workspace",
    "load_runtime_factory",
    "runs_user_commands",
    "runtime_started_status",
    "starting_runtime_status",
    "workspace_name",
]


def load_runtime_factory(spec: str, config: RuntimeConfig) -> ShellAgentFactory | ExecAgentFactory | None:
    """``"shell"`` or ``"exec:COMMAND ARGS"`` -> a session-aware factory (``actors.lifespan.create_agent``);
    any other spec -> None (then ``actors.agent.load_agent_factory`` applies)."""
    if spec == "shell":
        return ShellAgentFactory(config)
    if spec.startswith("exec:"):
        return ExecAgentFactory.from_spec(spec, config)
    return None


def runs_user_commands(spec: str) -> bool:
    """True for agents that execute what clients send (``shell``): the server must not serve them on a
    non-loopback host without authentication."""
    return spec == "shell"


async def delete_workspace(config: RuntimeConfig, session_id: str) -> bool:
    """Remove the session's workspace directory (``supervisor sessions delete``); False if there was none.
    Call it only when the session is not live (its shell would be writing there)."""
    path = config.workspaces / workspace_name(session_id)
    if not await trio.Path(path).is_dir():
        return False
    await trio.to_thread.run_sync(shutil.rmtree, path)
    return True
