"""The one configuration tree of a server, with a section per layer and documented defaults.

Owns: ``Config`` and the sections that have no home in a layer of their own (``SocketIOConfig``,
``StoreConfig``, ``ClusterConfig``, ``RuntimeConfig``, ``AdminConfig``, ``LoggingConfig``). The layers' own
sections are their classes, used as they are: ``[http]`` is ``server.http.HttpConfig``, ``[engineio]``
``server.engineio.EngineConfig``, ``[gateway]`` ``server.gateway.config.GatewayConfig``, ``[supervisor]``
``actors.config.SupervisorConfig`` (its restart policy nested as ``[supervisor.restart]``, an
``actors.restart.RestartConfig``). Each layer receives its own section object unchanged: nothing is copied
field by field or renamed on the way down.

Sections validate themselves on construction (``ValueError`` naming the problem). Knows nothing of where
values come from: ``server.config_loading`` reads a TOML file, the environment and flags into a ``Config``;
``server.config_toml`` writes one back out (secrets masked). The CLI (``supervisor serve``), the app
(``server.app.SupervisorApp``) and the test harness (``server.testing``) all build this object.

Defaults (what ``Config()`` is; ``docs/operations.md`` shows them as a TOML file):

    [http]        host 127.0.0.1, port 3000 (HttpConfig's other limits as documented there)
    [engineio]    ping_interval 25, ping_timeout 20, cors_allowed_origins none (same origin) ...
    [socketio]    connect_timeout 45, max_pending_acks 256 ...
    [gateway]     max_action_bytes 262144, no api_keys, no auth_hook
    [supervisor]  close_delay 120, close_delay_jitter 2, max_live_sessions 10000, shutdown_budget 20 ...
    [store]       url none (SQLite file supervisor.db in data_dir), data_dir "data"
    [cluster]     node_id "<hostname>-<pid>", lease_ttl 10
    [runtime]     agent "echo", workspaces_dir none (data_dir/workspaces), default_timeout 120 ...
    [admin]       token none (generated into data_dir/admin-token by ``serve``)
    [admin.ui]    enabled false, mode "development", readonly false, password_hash none
    [logging]     format "auto", level "info"
"""

from __future__ import annotations

import math
import os
import re
import socket
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from actors.config import SupervisorConfig
from actors.runtimes.config import RuntimeConfig
from actors.stores.url import open_store
from server.adminui.config import AdminUiConfig
from server.engineio.config import EngineConfig
from server.gateway.config import GatewayConfig
from server.http.config import HttpConfig

__all__ = [
    "DEFAULT_DATA_DIR",
    "DEFAULT_MAX_LIVE_SESSIONS",
    "DEFAULT_PORT",
    "AdminConfig",
    "ClusterConfig",
    "Config",
    "LoggingConfig",
    "RuntimeConfig",
    "SocketIOConfig",
    "StoreConfig",
]

DEFAULT_PORT = 3000
DEFAULT_DATA_DIR = Path("data")
DEFAULT_MAX_LIVE_SESSIONS = 10_000
NODE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")

LogFormat = Literal["auto", "json", "console"]
LogLevel = Literal["debug", "info", "warning", "error"]


@dataclass(frozen=True, slots=True)
class SocketIOConfig:
    """Options of the Socket.IO server (``server.socketio.Server``); the names are its keyword arguments.
    Whether handlers run inline and that a refused connect closes the connection are the gateway's
    contract, not options."""

    connect_timeout: float = 45.0
    """Seconds after the Engine.IO handshake within which a namespace must be connected."""
    max_pending_acks: int = 256
    """Server-initiated acks outstanding per connection."""
    max_ack_wait: float | None = 300.0
    """An emit callback not acknowledged within this many seconds is dropped; None: kept until disconnect."""
    max_attachments: int = 10
    """Binary attachments per packet accepted from a client."""
    max_binary_size: int = 16 * 1024 * 1024
    """Total bytes of one packet's attachments accepted from a client."""
    max_connect_backlog: int = 4096
    """Engine.IO messages queued for a sid while its connect handler runs; one more closes it."""

    def __post_init__(self) -> None:
        if self.connect_timeout <= 0:
            raise ValueError("connect_timeout must be > 0")
        if self.max_ack_wait is not None and self.max_ack_wait <= 0:
            raise ValueError("max_ack_wait must be > 0 or none")
        for name in ("max_pending_acks", "max_attachments", "max_binary_size", "max_connect_backlog"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")

    def server_options(self) -> dict[str, Any]:
        """Keyword arguments for ``server.socketio.Server`` (the field names are its parameter names)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class StoreConfig:
    url: str | None = None
    """``sqlite:///relative.db``, ``sqlite:////absolute.db`` or ``memory://``; none: the SQLite file
    ``supervisor.db`` in ``data_dir``. May carry a password (redis later): masked by ``config show``."""
    data_dir: Path = DEFAULT_DATA_DIR
    """Where the default SQLite database and the generated admin token file live."""

    def __post_init__(self) -> None:
        if self.url is not None:
            open_store(self.url)  # raises StoreURLError (a ValueError) for a bad URL; opens nothing
        if not str(self.data_dir):
            raise ValueError("data_dir must not be empty")

    @property
    def resolved_url(self) -> str:
        """The store URL in use: ``url``, or SQLite in ``data_dir``."""
        if self.url:
            return self.url
        return f"sqlite:///{self.data_dir / 'supervisor.db'}"


def default_node_id() -> str:
    """``<hostname>-<pid>``: unique per process on a machine, readable in logs."""
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname()) or "node"
    return f"{host}-{os.getpid()}"


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """This node's identity among several sharing a store (used by the cluster feature's lease)."""

    node_id: str = field(default_factory=default_node_id)
    """Name of this node in leases and logs: letters, digits and ``._:-``, at most 128 characters."""
    lease_ttl: float = 10.0
    """Seconds a session lease lives without renewal before another node may take the session."""

    def __post_init__(self) -> None:
        if not NODE_ID.match(self.node_id):
            raise ValueError("node_id must be 1-128 letters, digits or ._:-, starting with a letter or digit")
        if not (self.lease_ttl > 0 and math.isfinite(self.lease_ttl)):
            raise ValueError("lease_ttl must be > 0 seconds")


@dataclass(frozen=True, slots=True)
class AdminConfig:
    """The operator HTTP API (``/admin/...``, ``/metrics``) and the Socket.IO Admin UI (``[admin.ui]``)."""

    token: str | None = None
    """Bearer token of the operator API. Secret. None: ``serve`` generates one into
    ``data_dir/admin-token`` (mode 0600); in-process servers pick a random one."""
    ui: AdminUiConfig = field(default_factory=AdminUiConfig)
    """The official Socket.IO Admin UI's ``/admin`` namespace (``server.adminui.config``), off by default."""

    def __post_init__(self) -> None:
        if self.token is not None and (not self.token or self.token != self.token.strip()):
            raise ValueError("token must be non-empty, without surrounding spaces")


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    format: LogFormat = "auto"
    """``json``, ``console`` or ``auto`` (console on a terminal, JSON otherwise)."""
    level: LogLevel = "info"
    """``debug``, ``info``, ``warning`` or ``error``."""

    def __post_init__(self) -> None:
        if self.format not in ("auto", "json", "console"):
            raise ValueError("format must be one of auto, json, console")
        if self.level not in ("debug", "info", "warning", "error"):
            raise ValueError("level must be one of debug, info, warning, error")


def _default_http() -> HttpConfig:
    return HttpConfig(port=DEFAULT_PORT)


def _default_supervisor() -> SupervisorConfig:
    return SupervisorConfig(max_live_sessions=DEFAULT_MAX_LIVE_SESSIONS)


@dataclass(frozen=True, slots=True)
class Config:
    """The whole server's configuration: one section per layer, each handed to its layer as it is."""

    http: HttpConfig = field(default_factory=_default_http)
    engineio: EngineConfig = field(default_factory=EngineConfig)
    socketio: SocketIOConfig = field(default_factory=SocketIOConfig)
    gateway: GatewayConfig = field(default_factory=GatewayConfig)
    supervisor: SupervisorConfig = field(default_factory=_default_supervisor)
    store: StoreConfig = field(default_factory=StoreConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)

    def with_(self, **sections: Any) -> Config:
        """A copy with whole sections replaced: ``config.with_(admin=AdminConfig(token="t"))``."""
        return replace(self, **sections)

    def override(self, **changes: dict[str, Any]) -> Config:
        """A copy with some fields of some sections changed:
        ``config.override(http={"port": 0}, supervisor={"close_delay": None})``."""
        sections = {name: replace(getattr(self, name), **values) for name, values in changes.items()}
        return replace(self, **sections)


SECTIONS: dict[str, type] = {
    "http": HttpConfig,
    "engineio": EngineConfig,
    "socketio": SocketIOConfig,
    "gateway": GatewayConfig,
    "supervisor": SupervisorConfig,
    "store": StoreConfig,
    "cluster": ClusterConfig,
    "runtime": RuntimeConfig,
    "admin": AdminConfig,
    "logging": LoggingConfig,
}
"""Section name (in TOML and in ``SUPERVISOR_<SECTION>_<KEY>``) -> its class; the order of ``Config``."""

SECRETS: frozenset[tuple[str, str]] = frozenset(
    {("admin", "token"), ("gateway", "api_keys"), ("admin.ui", "password_hash")}
)
"""Fields masked by ``supervisor config show`` and ``/admin/config`` (store URLs lose their password)."""
