"""A bad link, one direction of it, as a model without I/O: what the impairment proxies of
:mod:`loadtest.impair` put each chunk through. A chunk is a UDP datagram or a TCP segment; it
belongs to a :class:`Flow` (one TCP connection or one UDP client), reliable (TCP) or not (UDP).

A :class:`Link` is one bottleneck: a single FIFO drop-tail queue drained by a single serializer,
as at the narrow hop of a real path (a phone's radio link). It carries one flow, or every flow of
a learner (their WebSocket and their media): then they share its queue, its rate and its outages,
and each flow keeps its own order and its own random draws.

1. **Queue.** A chunk enters the bottleneck's buffer of ``queue_bytes``. A datagram that finds it
   full is dropped (tail drop); a TCP sender is not read until there is room (backpressure, the
   proxy's side: :meth:`Link.room`), as its window closes behind a real bottleneck. A segment read
   while there was room is taken even if datagrams have filled the room since (the buffer then
   exceeds its size by at most a segment per TCP flow).
2. **Serialization.** The buffer drains at ``rate_bps``, every flow's chunks in their order of
   arrival: a chunk of ``size`` bytes arriving at ``t`` departs at ``max(t, previous departure)
   + size * 8 / rate_bps`` (a token bucket with no burst over a serialized queue). So a datagram
   waits behind the segments queued before it, and a segment behind the datagrams.
3. **Outage.** A chunk departing inside an outage passes nothing: a datagram is dropped (so is one
   arriving during it), a TCP segment is held and goes back to the head of the queue when the
   outage ends (the sender's retransmission; connections stay open, held segments keep their
   order and their room in the queue). The serializer goes on meanwhile, so a held segment holds
   back no datagram behind it (those depart into the outage and are dropped). Chunks that
   departed before the window are already on the wire and still arrive.
4. **Loss.** A datagram is lost, once it departs, with probability ``loss``. TCP cannot lose
   bytes, so a "lost" segment is delivered late instead, by ``max(200 ms, 2 x delay_ms)``, as a
   TCP retransmission timeout delays it; the rest of its flow waits too (head-of-line blocking),
   other flows do not: the link's bandwidth is not held by a retransmission.
5. **Propagation.** It arrives ``delay_ms`` +/- a uniform ``jitter_ms`` after departing (never
   before departing). Each flow's arrivals keep their order: always for TCP, and for UDP unless
   ``reorder``; flows are not ordered among themselves.

Every draw comes from the ``random.Random`` of the chunk's flow, in the order of that flow's
chunks: the same chunks of a flow draw the same losses and jitter, whatever else shares the link.
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


@dataclass(eq=False)
class Flow:
    """One TCP connection's or UDP client's chunks through a :class:`Link`, which other flows may
    share.

    Attributes:
        reliable: TCP behaviour (held, never dropped; a loss is a delay), else UDP.
        rng: the flow's random draws (loss, jitter), in the order of its chunks.
        counters: what this flow did, counted here as well as in the link's counters; None
            counts in the link's only.
    """

    reliable: bool
    rng: random.Random
    counters: LinkCounters | None = None
    _last_arrival: float = field(default=float("-inf"), init=False, repr=False)


@dataclass(slots=True)
class _Queued(Generic[P]):
    arrival: float
    size: int
    flow: Flow
    payload: P
    held: bool = False


class Link(Generic[P]):
    """One direction's bottleneck, queue and wire (the module's model), without I/O.

    Feed it chunks with :meth:`offer`, call :meth:`advance` at :meth:`next_wakeup` (and after each
    offer); it returns the payloads that have arrived, in arrival order. Times are loop seconds.
    A chunk offered without a flow is of :attr:`flow`, the link's own, whose behaviour
    ``reliable`` selects (TCP: hold, never drop) and whose draws come from ``rng``; give each
    offer its :class:`Flow` to share the link between connections. A zero-size chunk is a marker
    (TCP's end of stream): it keeps its place in its flow's order and is never lost, jittered or
    counted. :attr:`counters` count every flow's chunks.
    """

    def __init__(
        self,
        shape: LinkShape,
        *,
        outages: Outages,
        counters: LinkCounters,
        reliable: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        self.shape = shape
        self.counters = counters
        #: The flow of chunks offered without one.
        self.flow = Flow(reliable, rng or random.Random(0))
        self._outages = outages
        self._delay_s = shape.delay_ms / 1000
        self._jitter_s = shape.jitter_ms / 1000
        self._rto_s = max(MIN_RTO_S, 2 * self._delay_s)
        self._queue: deque[_Queued[P]] = deque()
        self._queued_bytes = 0
        self._head_departure: float | None = None
        self._last_departure = float("-inf")
        #: TCP segments that departed into an outage, in order, back to the queue's head at
        #: ``_release``.
        self._held: list[_Queued[P]] = []
        self._release = float("-inf")
        self._wire: list[tuple[float, int, _Queued[P]]] = []
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
        """Free bytes in the queue (held segments take theirs), or None when it is unbounded."""
        if self.shape.queue_bytes is None:
            return None
        return self.shape.queue_bytes - self._queued_bytes

    def offer(self, payload: P, size: int, now: float, flow: Flow | None = None) -> Drop | None:
        """Queue a chunk of ``size`` bytes of ``flow`` (default :attr:`flow`) arriving at
        ``now``; what refused it (UDP), or None. A reliable flow's chunk is always taken: its
        reader respects :meth:`room` instead. Losses and drops at departure are not known yet:
        see :attr:`counters`."""
        flow = flow or self.flow
        tallies = self._tallies(flow)
        if size:
            for counters in tallies:
                counters.chunks_in += 1
                counters.bytes_in += size
        if not flow.reliable:
            if self._outages.end_at(now) is not None:
                for counters in tallies:
                    counters.outage_drops += 1
                return "outage"
            room = self.room()
            if room is not None and size > room:
                for counters in tallies:
                    counters.queue_drops += 1
                return "queue"
        self._queue.append(_Queued(now, size, flow, payload))
        self._queued_bytes += size
        return None

    def next_wakeup(self) -> float | None:
        """The loop time of the next departure, arrival or release of held segments, or None
        when the link is empty."""
        times = [self._wire[0][0]] if self._wire else []
        if self._queue:
            times.append(self._head())
        if self._held:
            times.append(self._release)
        return min(times, default=None)

    def advance(self, now: float) -> list[P]:
        """Move every chunk due by ``now`` through the model; the payloads arrived, in order."""
        while True:
            departure = self._head() if self._queue else None
            if (
                self._held
                and self._release <= now
                and (departure is None or self._release <= departure)
            ):
                self._release_held()
                continue
            if departure is None or departure > now:
                break
            chunk = self._queue.popleft()
            self._head_departure = None
            self._last_departure = departure
            outage_end = self._outages.end_at(departure)
            if outage_end is None:
                self._queued_bytes -= chunk.size
                self._launch(chunk, departure)
            elif chunk.flow.reliable:
                self._held.append(chunk)
                self._release = max(self._release, outage_end)
                if not chunk.held and chunk.size:
                    chunk.held = True
                    for counters in self._tallies(chunk.flow):
                        counters.held += 1
            else:
                self._queued_bytes -= chunk.size
                for counters in self._tallies(chunk.flow):
                    counters.outage_drops += 1
        arrived = []
        while self._wire and self._wire[0][0] <= now:
            _, _, chunk = heapq.heappop(self._wire)
            if chunk.size:
                for counters in self._tallies(chunk.flow):
                    counters.chunks_out += 1
                    counters.bytes_out += chunk.size
            arrived.append(chunk.payload)
        return arrived

    def _tallies(self, flow: Flow) -> tuple[LinkCounters, ...]:
        if flow.counters is None or flow.counters is self.counters:
            return (self.counters,)
        return (self.counters, flow.counters)

    def _head(self) -> float:
        if self._head_departure is None:
            chunk = self._queue[0]
            start = max(chunk.arrival, self._last_departure)
            self._head_departure = start + self._serialization_s(chunk.size)
        return self._head_departure

    def _release_held(self) -> None:
        """The outage is over: the held segments are sent again first, in their order."""
        for chunk in self._held:
            chunk.arrival = self._release
        self._queue.extendleft(reversed(self._held))
        self._held = []
        self._head_departure = None

    def _serialization_s(self, size: int) -> float:
        return 0.0 if self.shape.rate_bps is None else size * 8 / self.shape.rate_bps

    def _launch(self, chunk: _Queued[P], departure: float) -> None:
        flow = chunk.flow
        arrival = departure + self._delay_s
        if chunk.size:
            if not flow.reliable and self.shape.loss and flow.rng.random() < self.shape.loss:
                for counters in self._tallies(flow):
                    counters.lost += 1
                return
            if self._jitter_s:
                jitter = flow.rng.uniform(-self._jitter_s, self._jitter_s)
                arrival = max(departure, arrival + jitter)
            if flow.reliable and self.shape.loss and flow.rng.random() < self.shape.loss:
                for counters in self._tallies(flow):
                    counters.lost += 1
                arrival += self._rto_s
        if flow.reliable or not self.shape.reorder:
            arrival = max(arrival, flow._last_arrival)
        flow._last_arrival = max(arrival, flow._last_arrival)
        self._sequence += 1
        heapq.heappush(self._wire, (arrival, self._sequence, chunk))
