"""The ``runtime`` configuration section: how per-session shells and exec agents are started and bounded.

Owns: ``RuntimeConfig``. Plain data with documented defaults; the configuration tree (server/config.py)
holds one as its ``runtime`` section and passes it unchanged to ``actors.runtimes.load_runtime_factory``.
Knows nothing of files, flags or environment variables.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class RuntimeConfig:
    workspaces_dir: Path = Path("data/workspaces")
    """Each session's shell runs in ``workspaces_dir/<conversation_id>/``, kept across incarnations."""
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
