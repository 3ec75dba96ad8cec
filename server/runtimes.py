"""The server's side of agent runtimes (``--agent shell``, ``--agent 'exec:COMMAND ARGS'``).

Owns: ``with_runtime_defaults`` (the ``runtime`` section completed from the rest of the tree: workspaces
under ``<data_dir>/workspaces``, a turn watchdog and a shutdown budget long enough for the runtime's
commands and its processes' grace), ``build_agent_factory`` (the spec -> a factory), ``exposure_error``
(the refusal to serve an agent that runs commands on a public interface without client authentication)
and ``workspace_deleter`` (for ``DELETE /admin/sessions/ID``). Knows nothing of HTTP, Socket.IO or the CLI's
parsing; the runtimes themselves live in ``actors.runtimes``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from actors.agent import AgentFactory, load_agent_factory
from actors.lifespan import SessionAgentFactory
from actors.runtimes import delete_workspace, load_runtime_factory
from server.config import Config

SHUTDOWN_MARGIN = 5.0
"""Seconds of the shutdown budget beyond the runtime's ``stop_grace`` (snapshot, exit, store close)."""


def owns_runtime(spec: str) -> bool:
    """Agents with a process per session: the shell runtime and exec agents."""
    return spec == "shell" or spec.startswith("exec:")


def with_runtime_defaults(config: Config) -> Config:
    """``config`` with what a runtime agent needs filled in; unchanged for other agents' sections."""
    runtime = config.runtime
    if runtime.workspaces_dir is None:
        runtime = replace(runtime, workspaces_dir=config.store.data_dir / "workspaces")
    sup = config.supervisor
    if owns_runtime(runtime.agent):
        changes: dict[str, Any] = {}
        if runtime.agent == "shell" and sup.turn_watchdog is not None \
                and sup.turn_watchdog < runtime.turn_time_limit:
            changes["turn_watchdog"] = runtime.turn_time_limit  # a command may run max_timeout, then grace
        if sup.shutdown_budget < runtime.stop_grace + SHUTDOWN_MARGIN:
            changes["shutdown_budget"] = runtime.stop_grace + SHUTDOWN_MARGIN
        if changes:
            sup = replace(sup, **changes)
    return config.with_(runtime=runtime, supervisor=sup)


def build_agent_factory(config: Config) -> AgentFactory | SessionAgentFactory | None:
    spec = config.runtime.agent
    factory = load_runtime_factory(spec, config.runtime)
    if factory is not None:
        return factory
    return load_agent_factory(spec)


def exposure_error(config: Config) -> str | None:
    """One line if the configured agent runs commands (shell, exec) on a non-loopback host and clients
    are not authenticated (``--allow-unauthenticated-public`` does not lift it: that is remote code
    execution for anyone)."""
    spec = config.runtime.agent
    if not owns_runtime(spec) or config.gateway.authenticates or config.http.listens_on_loopback:
        return None
    return (f"error: refusing to serve --agent {spec.split(':', 1)[0]} on {config.http.host} without "
            "client authentication (it runs commands for clients); pass --api-key or --auth-hook")


def workspace_deleter(config: Config) -> Callable[[str], Awaitable[bool]] | None:
    """Removes a session's workspace (None when the agent has none)."""
    runtime = config.runtime
    if runtime.agent != "shell":
        return None

    async def delete(session_id: str) -> bool:
        return await delete_workspace(runtime, session_id)

    return delete
