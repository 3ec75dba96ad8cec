"""The server's command-line options (``supervisor serve`` and ``supervisor config show``) as configuration.

Owns: ``ServeOptions`` (flattened into both commands by cyclopts; every option defaults to "not given")
and ``ServeOptions.load``: the TOML file of ``--config``, then ``SUPERVISOR_<SECTION>_<KEY>`` environment
variables, then the options given, into one ``server.config.Config``. Each option is one key of one
section (``FLAG_KEYS``); nothing here knows what the keys mean. Knows nothing of running a server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Any

from cyclopts import Parameter

from server.config import Config
from server.config_loading import Setting, load_config

__all__ = ["FLAG_KEYS", "ServeOptions"]

FLAG_KEYS: dict[str, tuple[str, str]] = {
    "host": ("http", "host"),
    "port": ("http", "port"),
    "store": ("store", "url"),
    "data_dir": ("store", "data_dir"),
    "close_delay": ("supervisor", "close_delay"),
    "close_delay_jitter": ("supervisor", "close_delay_jitter"),
    "agent": ("runtime", "agent"),
    "api_key": ("gateway", "api_keys"),
    "auth_hook": ("gateway", "auth_hook"),
    "allow_unauthenticated_public": ("gateway", "allow_unauthenticated_public"),
    "admin_token": ("admin", "token"),
    "cors_allowed_origins": ("engineio", "cors_allowed_origins"),
    "ping_interval": ("engineio", "ping_interval"),
    "ping_timeout": ("engineio", "ping_timeout"),
    "max_action_bytes": ("gateway", "max_action_bytes"),
    "max_live_sessions": ("supervisor", "max_live_sessions"),
    "max_sessions_per_user": ("supervisor", "max_sessions_per_user"),
    "shutdown_budget": ("supervisor", "shutdown_budget"),
    "log_format": ("logging", "format"),
    "log_level": ("logging", "level"),
    "admin_ui": ("admin", "ui.enabled"),
    "admin_ui_mode": ("admin", "ui.mode"),
    "admin_ui_readonly": ("admin", "ui.readonly"),
    "admin_ui_password_hash": ("admin", "ui.password_hash"),
    "node_id": ("cluster", "node_id"),
    "lease_ttl": ("cluster", "lease_ttl"),
}
"""Option (its ``--dashed-name``) -> the ``[section] key`` it sets; ``ui.mode`` is ``[admin.ui] mode``."""

_TEXT = frozenset({"close_delay"})  # parsed like an environment value: a number or 'never'


@Parameter(name="*")
@dataclass(frozen=True)
class ServeOptions:
    config: Path | None = None
    """TOML configuration file (see docs/operations.md). Environment variables SUPERVISOR_SECTION_KEY
    override it, and these options override both."""
    host: str | None = None
    """Interface to listen on ([http] host, default 127.0.0.1). Without client authentication only
    loopback is allowed."""
    port: int | None = None
    """TCP port ([http] port, default 3000); 0 picks a free one."""
    store: str | None = None
    """Store URL ([store] url): sqlite:///relative.db, sqlite:////absolute.db, memory://, or
    redis://HOST:PORT/DB (rediss:// for TLS; nodes sharing a Redis form a cluster). Default: SQLite in the
    data dir."""
    data_dir: Path | None = None
    """Directory for the SQLite database and the admin token file ([store] data_dir, default data)."""
    close_delay: str | None = None
    """Seconds a session without connections stays alive before it is passivated, or 'never'
    ([supervisor] close_delay, default 120)."""
    close_delay_jitter: float | None = None
    """Up to this many seconds added at random to each idle deadline ([supervisor], default 2)."""
    agent: str | None = None
    """Agent per session ([runtime] agent): 'echo' (default), 'none' (persist and fan out only), an import
    path 'module:Class', 'shell' (a bash per session in data-dir/workspaces/ID: runs what clients send) or
    'exec:COMMAND ARGS' (an agent process per session, docs/agents.md)."""
    api_key: str | None = None
    """Key clients must present (auth.token, or query session_api_key). Env: SUPERVISOR_API_KEY. Several
    keys, each with its user: [gateway.api_keys] in the file."""
    auth_hook: str | None = None
    """Import path 'module:callable' mapping (token, environ) to a user id, or None to refuse."""
    allow_unauthenticated_public: bool | None = None
    """Allow a non-loopback host without any client authentication."""
    admin_token: str | None = None
    """Token for the admin API ([admin] token). Env: SUPERVISOR_ADMIN_TOKEN. Default: generated into the
    data dir."""
    cors_allowed_origins: Annotated[list[str] | None, Parameter(negative=())] = None
    """Origins allowed for browser clients ('*' for any). Default: same origin only."""
    ping_interval: float | None = None
    """Engine.IO ping interval in seconds ([engineio], default 25)."""
    ping_timeout: float | None = None
    """Engine.IO ping timeout in seconds ([engineio], default 20)."""
    max_action_bytes: int | None = None
    """Largest accepted oh_user_action payload, as JSON ([gateway], default 262144)."""
    max_live_sessions: int | None = None
    """Cap on sessions in memory; the coldest idle ones are passivated to make room (default 10000)."""
    max_sessions_per_user: int | None = None
    """Cap on one user's live sessions (default: none)."""
    shutdown_budget: float | None = None
    """Seconds allowed to passivate every session on SIGINT/SIGTERM ([supervisor], default 20)."""
    log_format: str | None = None
    """'json', 'console' or 'auto' (console on a terminal) ([logging] format)."""
    log_level: str | None = None
    """debug, info, warning or error ([logging] level, default info)."""
    admin_ui: bool | None = None
    """Serve the official Socket.IO Admin UI's /admin namespace; its page is /admin-ui/ ([admin.ui]
    enabled)."""
    admin_ui_mode: str | None = None
    """'development' (default: sockets, rooms and events) or 'production' (stats only) ([admin.ui] mode)."""
    admin_ui_readonly: bool | None = None
    """Refuse the Admin UI's join, leave and disconnect commands ([admin.ui] readonly)."""
    admin_ui_password_hash: str | None = None
    """bcrypt hash of the Admin UI's password instead of the admin token ([admin.ui] password_hash)."""
    node_id: str | None = None
    """This node's name in a cluster's leases ([cluster] node_id, default <hostname>-<pid>)."""
    lease_ttl: float | None = None
    """Seconds a session's lease lives without renewal ([cluster] lease_ttl, default 10; renewed every
    TTL/3). After a crash another node takes the session over within about this long."""

    def settings(self) -> list[Setting]:
        """The options given, as configuration settings (source: the option's name)."""
        out = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or f.name not in FLAG_KEYS:
                continue
            section, key = FLAG_KEYS[f.name]
            flag = "--" + f.name.replace("_", "-")
            path = tuple(key.split("."))
            out.append(Setting(section, path, _flag_value(f.name, value), flag, text=f.name in _TEXT))
        return out

    def load(self, env: Mapping[str, str]) -> Config:
        """File < environment < these options. Raises ``server.config_loading.ConfigError``."""
        return load_config(self.config, env, self.settings())


def _flag_value(name: str, value: Any) -> Any:
    if name == "api_key":
        return {value: "default"}
    if name == "cors_allowed_origins":
        return "*" if value == ["*"] else list(value)
    if name == "data_dir":
        return str(value)
    return value


DEFAULT_SERVE_OPTIONS = ServeOptions()
