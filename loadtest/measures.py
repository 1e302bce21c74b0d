"""What the swarm measures beyond locust's own statistics, as plain data that merges across workers.

- :class:`Histogram`: latencies kept to the microsecond below 1 ms and to three significant digits
  above (locust rounds stored response times to about two digits, so its p95 of a sub-millisecond
  fan-out is coarse).
- :class:`DeliveryLedger`: which lecture lines were sent (room, event id), how many receivers got
  each, and each receiver's window of the room's log (the ids after its ``welcome.last_id`` up to
  the newest event it received). A line is *expected* by every receiver whose window covers its
  id, so delivered / expected is 1.0 exactly when no receiver missed a line it should have had,
  wherever the sender and the receivers ran. Breakout rooms: a lecture line is a main-room line,
  so a window also lists the spans of ids while its receiver was in a breakout room (``away``),
  and a line inside one is not expected of it; a broadcast (``everywhere``) is expected of every
  window that covers it, wherever its receiver was.

Both turn into JSON-friendly dicts (:meth:`snapshot`) that a worker sends to the master with
locust's ``report_to_master`` event, and merge back (:meth:`merge`).

No I/O, no gevent: unit-tested in tests/unit/test_loadtest_measures.py.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


def _bucket_us(latency_ms: float) -> int:
    """The bucket of a latency: microseconds below 1 ms, three significant digits above."""
    us = max(0, round(latency_ms * 1000.0))
    if us < 1000:
        return us
    digits = int(math.log10(us)) + 1
    scale = 10 ** (digits - 3)
    return round(us / scale) * scale


@dataclass
class Histogram:
    """Counts of latencies by bucket (microseconds)."""

    counts: dict[int, int] = field(default_factory=dict)

    def add(self, latency_ms: float) -> None:
        b = _bucket_us(latency_ms)
        self.counts[b] = self.counts.get(b, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def percentile(self, q: float) -> float | None:
        """The latency (ms) at or below which a share ``q`` (0-1) of the samples lie; None when
        empty."""
        total = self.total
        if total == 0:
            return None
        rank = max(1, math.ceil(q * total))
        seen = 0
        for bucket in sorted(self.counts):
            seen += self.counts[bucket]
            if seen >= rank:
                return bucket / 1000.0
        return max(self.counts) / 1000.0

    def snapshot(self) -> dict[str, int]:
        return {str(k): v for k, v in self.counts.items()}

    @classmethod
    def merge(cls, snapshots: Iterable[Mapping[str, int]]) -> Histogram:
        h = cls()
        for snap in snapshots:
            for k, v in snap.items():
                h.counts[int(k)] = h.counts.get(int(k), 0) + int(v)
        return h


@dataclass
class Delivery:
    """The completeness of the lecture lines: per line (room, id) delivered and expected."""

    lines: dict[tuple[str, int], tuple[int, int]]

    @property
    def delivered(self) -> int:
        return sum(d for d, _ in self.lines.values())

    @property
    def expected(self) -> int:
        return sum(e for _, e in self.lines.values())

    @property
    def ratio(self) -> float | None:
        """delivered / expected over every line; None when no line was expected anywhere."""
        expected = self.expected
        return None if expected == 0 else self.delivered / expected

    def incomplete(self) -> list[tuple[str, int, int, int]]:
        """(room, id, delivered, expected) of each line not delivered exactly as expected."""
        return sorted((r, i, d, e) for (r, i), (d, e) in self.lines.items() if d != e)


@dataclass
class DeliveryLedger:
    """One process's record of lecture lines sent and received (see the module docstring)."""

    #: room -> event ids of the lecture lines sent (from the teacher's ack).
    sent: dict[str, set[int]] = field(default_factory=dict)
    #: room -> event ids of the lines sent to every breakout room and the main room at once.
    sent_everywhere: dict[str, set[int]] = field(default_factory=dict)
    #: (room, event id) -> receipts.
    received: dict[tuple[str, int], int] = field(default_factory=dict)
    #: receiver key -> [room, first id not included, last id included, away] per window, where
    #: away lists [first id not included, last id included] spans spent in a breakout room; a
    #: receiver that resumed keeps its window, one that got a fresh ``welcome`` starts another.
    windows: dict[str, list[Any]] = field(default_factory=dict)

    def line_sent(self, room: str, event_id: int, *, everywhere: bool = False) -> None:
        """A line was acknowledged: a main-room line, or one for every room (``everywhere``)."""
        (self.sent_everywhere if everywhere else self.sent).setdefault(room, set()).add(event_id)

    def line_received(self, room: str, event_id: int) -> None:
        key = (room, event_id)
        self.received[key] = self.received.get(key, 0) + 1

    def window(
        self,
        key: str,
        room: str,
        after: int,
        through: int,
        away: Iterable[tuple[int, int]] = (),
    ) -> None:
        """Receiver window ``key`` has seen the room's log after ``after`` through ``through``,
        in a breakout room (not the main room) for the ids of each ``away`` span (after, through]
        (replacing what ``key`` held: a receiver that starts over with a fresh ``welcome`` uses a
        new key)."""
        self.windows[key] = [room, after, through, [[a, b] for a, b in away if b > a]]

    def clear(self) -> None:
        self.sent.clear()
        self.sent_everywhere.clear()
        self.received.clear()
        self.windows.clear()

    def snapshot(self) -> dict[str, Any]:
        return {
            "sent": {room: sorted(ids) for room, ids in self.sent.items()},
            "sent_everywhere": {room: sorted(ids) for room, ids in self.sent_everywhere.items()},
            "received": [[room, i, n] for (room, i), n in self.received.items()],
            "windows": [[key, *w] for key, w in self.windows.items()],
        }

    @staticmethod
    def merge(snapshots: Iterable[Mapping[str, Any]]) -> Delivery:
        sent: dict[str, set[int]] = {}
        everywhere: dict[str, set[int]] = {}
        received: dict[tuple[str, int], int] = {}
        windows: dict[str, _Spans] = {}
        away: dict[str, _Spans] = {}
        for snap in snapshots:
            for room, ids in snap.get("sent", {}).items():
                sent.setdefault(room, set()).update(int(i) for i in ids)
            for room, ids in snap.get("sent_everywhere", {}).items():
                everywhere.setdefault(room, set()).update(int(i) for i in ids)
            for room, i, n in snap.get("received", []):
                received[(room, int(i))] = received.get((room, int(i)), 0) + int(n)
            for _key, room, after, through, *rest in snap.get("windows", []):
                if int(through) > int(after):
                    windows.setdefault(room, _Spans()).add(int(after), int(through))
                for a, b in rest[0] if rest else ():
                    # only the part of a span inside its window counts
                    a, b = max(int(a), int(after)), min(int(b), int(through))
                    if b > a:
                        away.setdefault(room, _Spans()).add(a, b)
        lines: dict[tuple[str, int], tuple[int, int]] = {}
        for room, ids in sent.items():
            there, gone = windows.get(room, _Spans()), away.get(room, _Spans())
            for i in ids:
                expected = there.covering(i) - gone.covering(i)
                lines[(room, i)] = (received.get((room, i), 0), expected)
        for room, ids in everywhere.items():
            there = windows.get(room, _Spans())
            for i in ids:
                lines[(room, i)] = (received.get((room, i), 0), there.covering(i))
        # A line whose ack the teacher did not get (the run stopped in between) is left out.
        return Delivery(lines)


@dataclass
class _Spans:
    """Spans (after, through] of event ids; :meth:`covering` counts those holding an id."""

    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    _sorted: bool = True

    def add(self, after: int, through: int) -> None:
        self.starts.append(after)
        self.ends.append(through)
        self._sorted = False

    def covering(self, i: int) -> int:
        if not self._sorted:
            self.starts.sort()
            self.ends.sort()
            self._sorted = True
        # spans with after < i (begun before i) minus those with through < i (ended before it)
        return bisect.bisect_left(self.starts, i) - bisect.bisect_left(self.ends, i)
