"""Per-connection token bucket for inbound frames."""

from __future__ import annotations

import math
import time


class TokenBucket:
    """A token bucket: ``rate`` tokens per second, at most ``burst`` saved up.

    ``take()`` spends one token and returns 0, or returns how many milliseconds until one is
    available (the frame should then be refused with ``rate_limited``).
    """

    __slots__ = ("_last", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float, now: float | None = None) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._last = time.monotonic() if now is None else now

    def take(self, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0
        # Round up, so waiting the announced time is enough; the epsilon absorbs float noise.
        return max(1, math.ceil((1.0 - self._tokens) / self.rate * 1000 - 1e-6))
