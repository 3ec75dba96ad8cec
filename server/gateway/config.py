"""Configuration of the session gateway: the ``[gateway]`` section of the server's configuration tree.

Owns: ``GatewayConfig``, the gateway's limits and its client authentication settings, with documented
defaults, validated on construction. Plain data: knows nothing of how it is loaded (``server.config``) nor
of Socket.IO or the actors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    max_action_bytes: int = 256 * 1024
    """Largest accepted ``oh_user_action`` payload, measured as compact JSON."""
    namespace: str = "/"
    """The Socket.IO namespace the session protocol is served on."""
    api_keys: Mapping[str, str] = field(default_factory=dict)
    """Client API key -> user id. Empty: no authentication (loopback only unless told otherwise). Secret."""
    auth_hook: str | None = None
    """Import path ``module:callable`` of a validator mapping credentials to a user id (overrides keys)."""
    allow_unauthenticated_public: bool = False
    """Listen on a non-loopback host without any client authentication."""

    def __post_init__(self) -> None:
        if self.max_action_bytes < 1:
            raise ValueError("must be >= 1")
        if not self.namespace.startswith("/"):
            raise ValueError("namespace must start with '/'")
        for key, user in self.api_keys.items():
            if not key or not user:
                raise ValueError("api_keys: keys and user ids must be non-empty strings")
        if self.auth_hook is not None and ":" not in self.auth_hook:
            raise ValueError("auth_hook must be an import path 'module:callable'")

    @property
    def authenticates(self) -> bool:
        """Whether clients must present credentials (an API key or the auth hook)."""
        return bool(self.api_keys) or self.auth_hook is not None
