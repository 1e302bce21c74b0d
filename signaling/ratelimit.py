"""Token buckets: per connection for inbound frames, shared by each identity's connections in a
room on this node, per node for joins, per source address for failed authentications."""

from __future__ import annotations

import math
import time
from collections import OrderedDict


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


class SharedBuckets:
    """Token buckets shared by every connection with the same key (a room and an identity).

    A connection :meth:`acquire` s its key's bucket when it joins and :meth:`release` s it when it
    closes; the bucket is dropped with the key's last connection, so the table never holds more
    entries than the node has joined connections.
    """

    __slots__ = ("_buckets", "burst", "rate")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[object, tuple[TokenBucket, int]] = {}

    def acquire(self, key: object) -> TokenBucket:
        """The bucket of ``key``, made full if no connection holds it yet."""
        bucket, holders = self._buckets.get(key) or (TokenBucket(self.rate, self.burst), 0)
        self._buckets[key] = (bucket, holders + 1)
        return bucket

    def release(self, key: object) -> None:
        """One connection of ``key`` closed; the bucket goes with the last one."""
        entry = self._buckets.get(key)
        if entry is None:
            return
        bucket, holders = entry
        if holders <= 1:
            del self._buckets[key]
        else:
            self._buckets[key] = (bucket, holders - 1)

    def __len__(self) -> int:
        return len(self._buckets)


class AddressBuckets:
    """One :class:`TokenBucket` per source address, for at most ``max_addresses`` addresses.

    The least recently used address is forgotten first, so the table stays bounded whatever
    addresses arrive; a forgotten address starts again with a full bucket.
    """

    __slots__ = ("_buckets", "burst", "max_addresses", "rate")

    def __init__(self, rate: float, burst: float, max_addresses: int) -> None:
        self.rate = rate
        self.burst = burst
        self.max_addresses = max(1, max_addresses)
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, address: str, now: float | None = None) -> int:
        """Spend one of ``address``'s tokens: 0, or milliseconds until it has one again."""
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(address)
        if bucket is None:
            bucket = self._buckets[address] = TokenBucket(self.rate, self.burst, now)
            if len(self._buckets) > self.max_addresses:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(address)
        return bucket.take(now)
