"""The Admin UI's options: ``AdminUiConfig``, the config tree's ``[admin.ui]`` table.

Owns only the options and their validation (``supervisor serve --admin-ui``, ``--admin-ui-mode``,
``--admin-ui-readonly``, ``--admin-ui-password-hash``; ``SUPERVISOR_ADMIN_UI_<KEY>`` in the environment).
Imports nothing (``server.config`` nests it in ``AdminConfig``); what the options do is
``server.adminui.namespace``'s business.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

AdminUiMode = Literal["development", "production"]


@dataclass(frozen=True, slots=True)
class AdminUiConfig:
    enabled: bool = False
    """``supervisor serve --admin-ui``: serve the ``/admin`` namespace of the official Socket.IO Admin UI
    (its page is at ``/admin-ui/``). Login: username ``admin``, password the admin token."""
    mode: AdminUiMode = "development"
    """``development`` (default) sends every socket, room and event; ``production`` only stats."""
    readonly: bool = False
    """Refuse the UI's join/leave/disconnect commands."""
    password_hash: str | None = None
    """A bcrypt hash (``$2b$...``) of the UI's password, instead of the admin token. Secret."""
    namespace: str = "/admin"
    """The Socket.IO namespace the UI logs in on (its login form's "namespace" field)."""
    max_events_per_second: int = 1000
    """Cap on the socket and event notices forwarded per second (all admins together: one emit reaches
    them all); the excess is dropped and counted. An admin too slow to read them is disconnected."""

    def __post_init__(self) -> None:
        if self.mode not in ("development", "production"):
            raise ValueError("mode must be development or production")
        if self.password_hash is not None and not self.password_hash.startswith(("$2a$", "$2b$", "$2y$")):
            raise ValueError("password_hash must be a bcrypt hash ($2b$...)")
        if self.max_events_per_second < 1:
            raise ValueError("max_events_per_second must be positive")
        if not self.namespace.startswith("/") or self.namespace == "/":
            raise ValueError("namespace must start with / and not be the main namespace")
