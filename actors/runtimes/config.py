"""The ``runtime`` configuration section: how per-session shells and exec agents are started and bounded.

Owns: ``RuntimeConfig``, the one class of the section: the configuration tree (server/config.py) holds
one as its ``runtime`` section (loadable from TOML, ``SUPERVISOR_RUNTIME_*`` and flags like any section) and
passes it unchanged to ``actors.runtimes.load_runtime_factory``. Knows nothing of files, flags or
environment variables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

AGENT_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
DEFAULT_WORKSPACES = Path("data/workspaces")


@dataclass(frozen=True, slots=True)
class RuntimeConfig:
    agent: str = "echo"
    """The agent of each session: ``echo`` (answers every message), ``none`` (persist and fan out only),
    an import path ``module:Class``, ``shell`` (a per-session bash runtime) or ``exec:COMMAND ARGS`` (an
    agent in another process speaking the exec protocol of docs/agents.md)."""
    workspaces_dir: Path | None = None
    """Each session's shell runs in ``workspaces_dir/<conversation_id>/``, kept across incarnations. None:
    ``<data_dir>/workspaces`` (the server fills it in from ``[store] data_dir``)."""
    launcher: tuple[str, ...] = ()
    """A command prefix for the shell, e.g. a bubblewrap or container command; ``{workspace}`` in any
    element is replaced by the session's workspace path. Empty: bash runs directly (not a sandbox)."""
    shell: tuple[str, ...] = ("bash", "--noprofile", "--norc")
    env: tuple[tuple[str, str], ...] = ()
    """Extra environment variables for the shell (PATH, LANG, HOME=workspace and TERM=dumb are set)."""
    default_timeout: float = 120.0
    """Seconds a ``run`` command may take when its action gives no ``timeout``."""
    max_timeout: float = 600.0
    """The cap on a command's ``timeout``, whatever the action asks."""
    max_output_bytes: int = 1 << 20
    """Output kept per command (UTF-8 bytes); the rest is counted and replaced by a marker."""
    stream_interval: float = 1.0
    """A command still running after this many seconds streams its new output this often (exit_code -1)."""
    interrupt_grace: float = 3.0
    """After SIGINT (timeout or C-c), seconds before the command's processes get SIGKILL."""
    stop_grace: float = 5.0
    """At the end of an incarnation: seconds between SIGTERM and SIGKILL for the runtime's processes."""
    exec_max_line: int = 1 << 20
    """Longest line an exec agent may write on stdout (bytes); longer is a protocol error."""
    exec_max_lines_per_second: float = 200.0
    """Sustained stdout lines per second an exec agent may write (burst: twice that); more is an error."""
    exec_start_timeout: float = 30.0
    """Seconds an exec agent has to answer ``start`` with ``ready``."""
    exec_reply_timeout: float = 30.0
    """Seconds an exec agent has to answer ``snapshot_request``."""

    def __post_init__(self) -> None:
        agent = self.agent
        if agent not in ("echo", "none", "shell") and not agent.startswith("exec:") \
                and not AGENT_SPEC.match(agent):
            raise ValueError("agent must be 'echo', 'none', 'shell', 'exec:COMMAND ARGS' or an import path "
                             "'module:Class'")
        if agent.startswith("exec:") and not agent[5:].strip():
            raise ValueError("agent 'exec:' needs a command")
        if self.max_timeout <= 0 or self.default_timeout <= 0 or self.stop_grace < 0:
            raise ValueError("timeouts must be > 0 and stop_grace >= 0")

    @property
    def workspaces(self) -> Path:
        """The directory holding every session's workspace."""
        return self.workspaces_dir if self.workspaces_dir is not None else DEFAULT_WORKSPACES

    @property
    def turn_time_limit(self) -> float:
        """The longest a shell turn can take (a command at ``max_timeout``, then its interrupt and kill):
        the supervisor's turn watchdog must allow at least this."""
        return self.max_timeout + self.interrupt_grace + self.stop_grace + 5.0
