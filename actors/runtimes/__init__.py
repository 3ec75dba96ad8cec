"""Runtimes: agents that own processes for one incarnation (a per-session shell, agents in other processes).

Owns: ``load_runtime_factory`` (the ``--agent shell`` and ``--agent 'exec:COMMAND ARGS'`` specs) and the
re-exports below. Knows nothing of ``server/``: the CLI passes the ``runtime`` configuration section in.
"""

from __future__ import annotations

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
    "load_runtime_factory",
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
