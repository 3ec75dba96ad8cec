"""Restart policy and budget, OTP style: what happens when an actor crashes.

Owns: ``RestartPolicy``, ``RestartConfig`` and ``RestartBudget`` (sans-IO: fed crash times, answers
"restart after this delay" or "give up"). Knows nothing of trio tasks or actors.

- permanent: restarted after a crash and after a normal ``Stop`` message.
- transient: restarted after a crash only.
- temporary: never restarted; a crash ends the incarnation (its senders get ``SessionFailed``), and the next
  message for the session starts a fresh one from the store.

Intensity/period: more than ``intensity`` restarts within ``period`` seconds and the session is FAILED.
Backoff: ``backoff_initial * backoff_factor ** (n - 1)`` for the n-th restart in the window, capped at
``backoff_max``.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass


class RestartPolicy(enum.Enum):
    PERMANENT = "permanent"
    TRANSIENT = "transient"
    TEMPORARY = "temporary"


@dataclass(frozen=True, slots=True)
class RestartConfig:
    policy: RestartPolicy = RestartPolicy.TRANSIENT
    intensity: int = 3
    period: float = 60.0
    backoff_initial: float = 0.1
    backoff_factor: float = 2.0
    backoff_max: float = 5.0

    def __post_init__(self) -> None:
        if self.intensity < 0 or self.period <= 0 or self.backoff_initial < 0 or self.backoff_factor < 1:
            raise ValueError("invalid restart configuration")


class RestartBudget:
    """Per-session crash history. ``on_crash(now)`` -> delay before restarting, or None to give up."""

    __slots__ = ("_config", "_times")

    def __init__(self, config: RestartConfig) -> None:
        self._config = config
        self._times: deque[float] = deque()

    def on_crash(self, now: float, *, normal_exit: bool = False) -> float | None:
        cfg = self._config
        if cfg.policy is RestartPolicy.TEMPORARY:
            return None
        if normal_exit and cfg.policy is not RestartPolicy.PERMANENT:
            return None
        times = self._times
        while times and times[0] <= now - cfg.period:
            times.popleft()
        if len(times) >= cfg.intensity:
            return None
        times.append(now)
        delay = cfg.backoff_initial * cfg.backoff_factor ** (len(times) - 1)
        return min(delay, cfg.backoff_max)

    @property
    def recent(self) -> int:
        return len(self._times)
