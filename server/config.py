"""The one configuration object of a running server, with documented defaults.

Owns: ``ServeConfig`` and how it is read from the environment. The CLI builds one and passes it down
explicitly; no module reads the environment or keeps global settings on its own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PORT = 3000
DEFAULT_DATA_DIR = Path("data")


@dataclass(slots=True)
class ServeConfig:
    host: str = "127.0.0.1"
    """Interface to listen on. Without an API key the server refuses anything but loopback unless
    ``allow_unauthenticated_public`` is set."""
    port: int = DEFAULT_PORT
    """TCP port; 0 picks a free one (tests)."""
    data_dir: Path = DEFAULT_DATA_DIR
    """Where the SQLite database and the admin token file live."""
    store_url: str | None = None
    """``sqlite:///relative.db``, ``sqlite:////absolute.db`` or ``memory://``; default: SQLite in data_dir."""
    close_delay: float | None = 120.0
    """Seconds a session stays alive with no connection before it is passivated; None means never."""
    agent: str = "echo"
    """Agent import path ``module:Class``, or ``echo`` (default) or ``none``."""
    api_keys: dict[str, str] = field(default_factory=dict)
    """Client API key -> user id. Empty: no authentication (loopback only unless told otherwise)."""
    auth_hook: str | None = None
    """Import path ``module:callable`` of a validator mapping credentials to a user id (overrides keys)."""
    allow_unauthenticated_public: bool = False
    """Listen on a non-loopback host without any client authentication."""
    admin_token: str | None = None
    """Token for the admin API; generated and written to ``data_dir/admin-token`` when absent."""
    log_format: str = "auto"
    """``json``, ``console`` or ``auto`` (console on a terminal, JSON otherwise)."""
    log_level: str = "info"
    cors_allowed_origins: list[str] | str | None = None
    """Origins allowed for browser clients: None (same origin), ``*``, or a list."""
    ping_interval: float = 25.0
    ping_timeout: float = 20.0
    max_action_bytes: int = 256 * 1024
    """Largest accepted ``oh_user_action`` payload, as JSON."""
    max_live_sessions: int = 10_000
    """Cap on live (not passivated) sessions; the coldest idle ones are passivated to make room."""
    max_sessions_per_user: int | None = None
    """Cap on live sessions per user; the user's coldest session is passivated to make room."""
    shutdown_budget: float = 20.0
    """Seconds allowed to passivate every session on SIGINT/SIGTERM."""

    @property
    def resolved_store_url(self) -> str:
        if self.store_url:
            return self.store_url
        return f"sqlite:///{self.data_dir / 'supervisor.db'}"

    @staticmethod
    def env_api_key() -> str | None:
        return os.environ.get("SUPERVISOR_API_KEY") or None

    @staticmethod
    def env_admin_token() -> str | None:
        return os.environ.get("SUPERVISOR_ADMIN_TOKEN") or None
