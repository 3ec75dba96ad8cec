"""Configuration of the supervisor and its actors, with documented defaults.

Owns: ``SupervisorConfig``. Plain data; validated on construction. Knows nothing of how it is loaded (the
server's config file maps onto these fields).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from actors.mailbox import DEFAULT_CAPACITY
from actors.restart import RestartConfig


@dataclass(frozen=True, slots=True)
class SupervisorConfig:
    close_delay: float | None = 120.0
    """Seconds a session stays IDLE (no connection, no work) before it is passivated. None: never."""
    close_delay_jitter: float = 2.0
    """Up to this many seconds added at random to each idle deadline, so mass disconnects do not passivate
    in one burst."""
    mailbox_size: int = DEFAULT_CAPACITY
    max_live_sessions: int | None = None
    """Cap on sessions in memory; beyond it the coldest IDLE session is evicted (never one with a
    connection); if none is IDLE the new session is refused with TooManySessions."""
    max_sessions_per_user: int | None = None
    """Cap on one user's live sessions; beyond it their least recently active other session is passivated
    and its connections get AGENT_ERROR$TOO_MANY_CONVERSATIONS."""
    max_concurrent_rehydrations: int = 64
    restart: RestartConfig = field(default_factory=RestartConfig)
    turn_watchdog: float | None = 600.0
    """A turn running longer is cancelled; the session's connections get an error status."""
    replay_page_size: int = 200
    connection_lag_limit: int | None = 10_000
    """A connection catching up (replaying) that falls this many live events further behind is closed."""
    agent_queue_size: int = 1024
    """User actions waiting for the agent; beyond it an Act is refused with AgentBusy."""
    drain_batch: int = 512
    """Messages the actor takes from its mailbox per batch (consecutive Acts share one store append)."""
    idempotency_window: int = 1024
    """client_seq values remembered per session (persisted in the snapshot)."""

    def __post_init__(self) -> None:
        if self.close_delay is not None and self.close_delay < 0:
            raise ValueError("close_delay must be >= 0 or None")
        if self.close_delay_jitter < 0:
            raise ValueError("close_delay_jitter must be >= 0")
        for name in ("mailbox_size", "max_concurrent_rehydrations", "replay_page_size", "agent_queue_size",
                     "drain_batch", "idempotency_window"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        for name in ("max_live_sessions", "max_sessions_per_user", "connection_lag_limit"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 or None")
        if self.turn_watchdog is not None and self.turn_watchdog <= 0:
            raise ValueError("turn_watchdog must be > 0 or None")
