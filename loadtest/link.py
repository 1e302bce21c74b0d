"""A bad link, one direction of it, as a model without I/O: what the impairment proxies of
:mod:`loadtest.impair` put each chunk through. A chunk is a UDP datagram or a TCP segment.

1. **Queue.** A chunk enters the bottleneck's buffer of ``queue_bytes``. A datagram that finds it
   full is dropped (tail drop); a TCP sender is not read until there is room (backpressure, the
   proxy's side: :meth:`Link.room`), as its window closes behind a real bottleneck.
2. **Serialization.** The buffer drains at ``rate_bps``: a chunk of ``size`` bytes arriving at
   ``t`` departs at ``max(t, previous departure) + size * 8 / rate_bps`` (a token bucket with no
   burst over a serialized queue).
3. **Outage.** A chunk departing inside an outage window passes nothing: a datagram is dropped (so
   is one arriving during it), a TCP segment is held to the window's end (connections stay open).
   Chunks that departed before the window are already on the wire and still arrive.
4. **Loss.** A datagram is lost, once it departs, with probability ``loss``. TCP cannot lose
   bytes, so a "lost" segment is delivered late instead, by ``max(200 ms, 2 x delay_ms)``, as a
   TCP retransmission timeout delays it; everything behind it waits too (head-of-line blocking).
5. **Propagation.** It arrives ``delay_ms`` +/- a uniform ``jitter_ms`` after departing (never
   before departing). Arrivals keep their order: always for TCP, and for UDP unless ``reorder``.

Every draw comes from the ``random.Random`` a :class:`Link` is given, in the order of its chunks:
the same chunks draw the same losses and jitter.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

#: The least extra time a "lost" TCP segment is held: Linux's minimum retransmission timeout.
MIN_RTO_S = 0.2

#: Why a datagram was refused at the door: a full queue, or an outage.
Drop = Literal["queue", "outage"]
P = TypeVar("P")


@dataclass(frozen=True)
class LinkShape:
    """One direction of a bad link. The defaults pass everything at once.

    Attributes:
        rate_bps: the bottleneck's rate, bits per second; None is unlimited.
        delay_ms: one-way base delay after the bottleneck, ms.
        jitter_ms: each chunk's delay is ``delay_ms`` + uniform(-jitter_ms, +jitter_ms), ms,
            never below zero. Order is kept (see ``reorder``).
        loss: probability, 0..1, that a UDP datagram is lost; for TCP, that a segment is held an
            extra ``max(200 ms, 2 x delay_ms)`` (a retransmission, see the module).
        queue_bytes: the bottleneck's buffer, bytes; None is unbounded.
        outages: windows ``(start_s, duration_s)``, seconds from the proxy's start, during which
            nothing passes (see the module; more at run time with ``outage()``).
        reorder: let jitter reorder UDP datagrams (TCP never is).

    Raises:
        ValueError: a value out of its range.
    """

    rate_bps: float | None = None
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss: float = 0.0
    queue_bytes: int | None = 64 * 1024
    outages: tuple[tuple[float, float], ...] = ()
    reorder: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "outages", tuple((float(s), float(d)) for s, d in self.outages))
        if self.rate_bps is not None and self.rate_bps <= 0:
            raise ValueError(f"rate_bps must be positive or None, not {self.rate_bps}")
        if self.delay_ms < 0 or self.jitter_ms < 0:
            raise ValueError("delay_ms and jitter_ms must not be negative")
        if not 0.0 <= self.loss <= 1.0:
            raise ValueError(f"loss is a probability, 0..1, not {self.loss}")
        if self.queue_bytes is not None and self.queue_bytes <= 0:
            raise ValueError(f"queue_bytes must be positive or None, not {self.queue_bytes}")
        if any(start < 0 or duration <= 0 for start, duration in self.outages):
            raise ValueError(f"outage windows need start_s >= 0 and duration_s > 0: {self.outages}")


@dataclass(frozen=True)
class Impairment:
    """Both directions: ``up`` is client -> target, ``down`` is target -> client."""

    up: LinkShape = field(default_factory=LinkShape)
    down: LinkShape = field(default_factory=LinkShape)

    @classmethod
    def symmetric(cls, shape: LinkShape) -> Impairment:
        """The same shape both ways."""
        return cls(up=shape, down=shape)


@dataclass
class LinkCounters:
    """What one direction did, summed over its connections or clients. A chunk is a UDP datagram
    or a TCP segment (at most :data:`loadtest.impair.SEGMENT_BYTES`)."""

    bytes_in: int = 0
    bytes_out: int = 0
    chunks_in: int = 0
    chunks_out: int = 0
    #: UDP: datagrams lost. TCP: segments held as retransmitted.
    lost: int = 0
    #: UDP: datagrams tail-dropped by a full queue.
    queue_drops: int = 0
    #: UDP: datagrams dropped by an outage.
    outage_drops: int = 0
    #: TCP: segments held by an outage.
    held: int = 0


class Outages:
    """The outage windows of one direction, as ``[start, end)`` in loop time (s)."""

    def __init__(self, started: float, windows: Iterable[tuple[float, float]] = ()) -> None:
        self._windows = [(started + start, started + start + d) for start, d in windows]

    def add(self, start: float, duration_s: float) -> None:
        """A window of ``duration_s`` seconds from loop time ``start``; ended ones are forgotten."""
        self._windows = [w for w in self._windows if w[1] > start]
        self._windows.append((start, start + duration_s))

    def end_at(self, t: float) -> float | None:
        """When the outage covering loop time ``t`` ends (overlapping windows joined), or None if
        the link is up at ``t``."""
        end = None
        moved = True
        while moved:
            moved = False
            for start, stop in self._windows:
                if start <= t < stop:
                    t = end = stop
                    moved = True
        return end


@dataclass(slots=True)
class _Queued(Generic[P]):
    arrival: float
    size: int
    payload: P
    held: bool = False


class Link(Generic[P]):
    """One direction's bottleneck, queue and wire (the module's model), without I/O.

    Feed it chunks with :meth:`offer`, call :meth:`advance` at :meth:`next_wakeup` (and after each
    offer); it returns the payloads that have arrived, in arrival order. Times are loop seconds.
    ``reliable`` selects TCP behaviour (hold, never drop). A zero-size chunk is a marker (TCP's
    end of stream): it keeps its place in the order and is never lost, jittered or counted.
    """

    def __init__(
        self,
        shape: LinkShape,
        *,
        reliable: bool,
        outages: Outages,
        rng: random.Random,
        counters: LinkCounters,
    ) -> None:
        self.shape = shape
        self.counters = counters
        self._reliable = reliable
        self._outages = outages
        self._rng = rng
        self._delay_s = shape.delay_ms / 1000
        self._jitter_s = shape.jitter_ms / 1000
        self._rto_s = max(MIN_RTO_S, 2 * self._delay_s)
        self._queue: deque[_Queued[P]] = deque()
        self._queued_bytes = 0
        self._head_departure: float | None = None
        self._last_departure = float("-inf")
        self._last_arrival = float("-inf")
        self._wire: list[tuple[float, int, int, P]] = []
        self._sequence = 0

    def reshape(self, shape: LinkShape) -> None:
        """Take ``shape`` from now on: a link that gets worse or better mid-run. What is queued
        stays queued (a smaller queue takes nothing more until it drains below its size), and the
        chunk at the head keeps its departure time; the outage windows stay those of the start."""
        self.shape = shape
        self._delay_s = shape.delay_ms / 1000
        self._jitter_s = shape.jitter_ms / 1000
        self._rto_s = max(MIN_RTO_S, 2 * self._delay_s)

    def room(self) -> int | None:
        """Free bytes in the queue, or None when it is unbounded."""
        if self.shape.queue_bytes is None:
            return None
        return self.shape.queue_bytes - self._queued_bytes

    def offer(self, payload: P, size: int, now: float) -> Drop | None:
        """Queue a chunk of ``size`` bytes arriving at ``now``; what refused it (UDP), or None.
        A reliable link takes every chunk: its reader respects :meth:`room` instead. Losses and
        drops at departure are not known yet: see :attr:`counters`."""
        if size:
            self.counters.chunks_in += 1
            self.counters.bytes_in += size
        if not self._reliable:
            if self._outages.end_at(now) is not None:
                self.counters.outage_drops += 1
                return "outage"
            room = self.room()
            if room is not None and size > room:
                self.counters.queue_drops += 1
                return "queue"
        self._queue.append(_Queued(now, size, payload))
        self._queued_bytes += size
        return None

    def next_wakeup(self) -> float | None:
        """The loop time of the next departure or arrival, or None when the link is empty."""
        times = [self._wire[0][0]] if self._wire else []
        if self._queue:
            times.append(self._head())
        return min(times, default=None)

    def advance(self, now: float) -> list[P]:
        """Move every chunk due by ``now`` through the model; the payloads arrived, in order."""
        while self._queue and (departure := self._head()) <= now:
            chunk = self._queue[0]
            outage_end = self._outages.end_at(departure)
            if outage_end is not None and self._reliable:
                self._head_departure = outage_end + self._serialization_s(chunk.size)
                if not chunk.held and chunk.size:
                    chunk.held = True
                    self.counters.held += 1
                continue
            self._queue.popleft()
            self._queued_bytes -= chunk.size
            self._head_departure = None
            self._last_departure = departure
            if outage_end is not None:
                self.counters.outage_drops += 1
            else:
                self._launch(chunk, departure)
        arrived = []
        while self._wire and self._wire[0][0] <= now:
            _, _, size, payload = heapq.heappop(self._wire)
            if size:
                self.counters.chunks_out += 1
                self.counters.bytes_out += size
            arrived.append(payload)
        return arrived

    def _head(self) -> float:
        if self._head_departure is None:
            chunk = self._queue[0]
            start = max(chunk.arrival, self._last_departure)
            self._head_departure = start + self._serialization_s(chunk.size)
        return self._head_departure

    def _serialization_s(self, size: int) -> float:
        return 0.0 if self.shape.rate_bps is None else size * 8 / self.shape.rate_bps

    def _launch(self, chunk: _Queued[P], departure: float) -> None:
        arrival = departure + self._delay_s
        if chunk.size:
            if not self._reliable and self.shape.loss and self._rng.random() < self.shape.loss:
                self.counters.lost += 1
                return
            if self._jitter_s:
                jitter = self._rng.uniform(-self._jitter_s, self._jitter_s)
                arrival = max(departure, arrival + jitter)
            if self._reliable and self.shape.loss and self._rng.random() < self.shape.loss:
                self.counters.lost += 1
                arrival += self._rto_s
        if self._reliable or not self.shape.reorder:
            arrival = max(arrival, self._last_arrival)
        self._last_arrival = max(arrival, self._last_arrival)
        self._sequence += 1
        heapq.heappush(self._wire, (arrival, self._sequence, chunk.size, chunk.payload))
