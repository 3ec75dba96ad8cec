"""Reconnect delays: exponential backoff with jitter, as the JS client computes them.

Owns: the delay before reconnect attempt N. Must not know about: connections, time sources, trio.

``delay(n) = min(base * 2**(n-1), max)`` spread by ``±randomization_factor`` (uniformly), then capped at
``max`` again, so that many clients dropped at once do not all come back in the same instant.
"""

from __future__ import annotations

import random

__all__ = ["Backoff"]


class Backoff:
    __slots__ = ("base", "max", "randomization_factor", "rng")

    def __init__(
        self,
        base: float = 0.5,
        max: float = 5.0,
        randomization_factor: float = 0.5,
        rng: random.Random | None = None,
    ) -> None:
        if base < 0 or max < 0:
            raise ValueError("reconnect delays must be non-negative")
        if not 0 <= randomization_factor <= 1:
            raise ValueError("randomization_factor must be within [0, 1]")
        self.base = base
        self.max = max
        self.randomization_factor = randomization_factor
        self.rng = rng or random.Random()

    def delay(self, attempt: int) -> float:
        """Seconds to wait before reconnect attempt ``attempt`` (1 for the first)."""
        exponent = min(max(attempt - 1, 0), 32)  # bounded: 2**32 * base is past any sane max already
        delay = min(self.base * (2**exponent), self.max)
        if self.randomization_factor:
            delay *= 1 + self.rng.uniform(-self.randomization_factor, self.randomization_factor)
        return max(0.0, min(delay, self.max))
