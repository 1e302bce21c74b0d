"""Breakout rooms in the swarm: where each receiver is, what it may receive there, and the
teacher's rounds (open with auto-assignment, move a few students, broadcast, extend the timer,
close or let the timer close).

No I/O, no gevent, no locust: the users of loadtest/locustfile.py feed frames in and send what
:meth:`Round.due` says; unit-tested in tests/unit/test_loadtest_breakouts.py.

A receiver's **place** (a breakout room's name, or None for the main room) comes from its
``welcome`` and every ``view`` frame (docs/protocol.md) and from the ``breakout.*`` events it
receives, all of which arrive in log order with the events they change. The place at each event is
what the isolation check holds the event to: a room-scoped line (``chat.message`` not in a private
thread and not a broadcast, ``question.*`` and ``hand.*`` events) carries its ``room``, and a
student may receive only those of its own place. The spans of ids spent away from the main room go
to the delivery ledger, which then expects no lecture line (a main-room line) of them.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from clients.breakouts import Breakouts, auto_assignment

Frame = dict[str, Any]
#: Events a room's audience is limited to (docs/protocol.md, "Breakout rooms"): their ``room``.
SCOPED_PREFIXES = ("question.", "hand.")
#: The text a broadcast starts with: ``broadcast <round> <send time, ns>``.
BROADCAST = "broadcast"


def scope_of(event_type: str, data: Mapping[str, Any]) -> tuple[bool, str | None]:
    """(whether the event is scoped to one room, that room: a breakout's name or None)."""
    if event_type == "chat.message":
        if data.get("thread") is not None or data.get("broadcast"):
            return False, None
        return True, data.get("room")
    if event_type.startswith(SCOPED_PREFIXES) and event_type != "hands.cleared":
        return True, data.get("room")
    return False, None


@dataclass
class Place:
    """One receiver's place within its current window of the room's log.

    ``start(view, after)`` at each ``welcome`` (a new window), ``view(room_view, last_id)`` at
    each ``view`` frame, ``event(frame)`` at each event; :attr:`away` holds the spans (after,
    through] of event ids spent in a breakout room, the open one ending at ``through``.
    """

    me: str
    #: Staff see every room's lines: nothing is held against them.
    staff: bool = False
    breakouts: Breakouts = field(default_factory=Breakouts)
    away: list[list[int]] = field(default_factory=list)
    through: int = 0
    #: Place changes seen (views and events).
    changes: int = 0
    #: When the last closed round was to close by its timer (server epoch ms), if it had one.
    closed_ends_at: int | None = None

    @property
    def room(self) -> str | None:
        return self.breakouts.place_of(self.me)

    def start(self, room_view: Mapping[str, Any], after: int) -> None:
        """A ``welcome``: a new window after ``after``, in the place of its ``RoomView``."""
        self.breakouts = Breakouts.from_view(room_view.get("breakouts"))
        self.away = []
        self.through = after
        if self.room is not None:
            self.away.append([after, after])

    def view(self, room_view: Mapping[str, Any], last_id: int) -> None:
        """A ``view`` frame: the place is the view's from ``last_id`` on."""
        before = self.room
        self.breakouts = Breakouts.from_view(room_view.get("breakouts"), before=self.breakouts)
        self._moved(before, last_id)

    def event(self, event: Frame) -> str | None:
        """Fold one event; returns why it should not have reached this receiver, or None."""
        event_id, kind, data = int(event["id"]), str(event["type"]), event.get("data") or {}
        scoped, room = scope_of(kind, data)
        wrong = None
        if scoped and room != self.room and not self.staff:
            wrong = f"{kind} {event_id} of {_name(room)} reached {self.me} in {_name(self.room)}"
        before = self.room
        if kind == "breakout.closed":
            self.closed_ends_at = self.breakouts.ends_at
        self.breakouts.apply(kind, data, int(event.get("ts") or 0), me=self.me, staff=self.staff)
        self._moved(before, event_id)
        self.seen(event_id)
        return wrong

    def seen(self, through: int) -> None:
        """The receiver's window now reaches ``through``."""
        self.through = max(self.through, through)
        if self.away and self.room is not None:
            self.away[-1][1] = max(self.away[-1][1], self.through)

    def _moved(self, before: str | None, at: int) -> None:
        after = self.room
        if after == before:
            return
        self.changes += 1
        if before is None:
            self.away.append([at, at])
        elif after is None and self.away:
            self.away[-1][1] = max(self.away[-1][1], at)

    def spans(self) -> list[tuple[int, int]]:
        return [(a, b) for a, b in self.away]


def _name(room: str | None) -> str:
    return "the main room" if room is None else f"breakout {room!r}"


@dataclass
class Round:
    """The teacher's breakout round: what to send when (times: the teacher's monotonic seconds).

    Odd rounds run on a timer (``duration_s``), extended at a third of the way to end where it
    began; even rounds have none and the teacher closes them after ``duration_s``. At a third of
    the way the teacher moves two students to other rooms (one ``breakout.move``, one
    ``breakout.assign``) and broadcasts a line.
    """

    number: int
    rooms: list[str]
    duration_s: float
    sent_at: float
    opened_at: float | None = None
    #: identity -> room, from ``breakout.opened`` and the moves since.
    members: dict[str, str] = field(default_factory=dict)
    midway_done: bool = False
    close_sent: bool = False
    closed: bool = False

    @property
    def timed(self) -> bool:
        return self.number % 2 == 1

    def open_command(self) -> Frame:
        return {
            "t": "breakout.open",
            "rooms": list(self.rooms),
            "auto": auto_assignment(),
            "duration_s": max(1, math.ceil(self.duration_s)) if self.timed else None,
            "warn_s": 1,
        }

    def due(self, now: float, rng: random.Random) -> list[Frame]:
        """The commands due at ``now`` (each at most once)."""
        out: list[Frame] = []
        if self.opened_at is None or self.closed:
            return out
        elapsed = now - self.opened_at
        if not self.midway_done and elapsed >= self.duration_s / 3:
            self.midway_done = True
            out += self._moves(rng)
            out.append({"t": "breakout.broadcast", "text": f"{BROADCAST} {self.number}"})
            if self.timed:
                remaining = max(1, math.ceil(self.duration_s - elapsed))
                out.append({"t": "breakout.timer", "remaining_s": remaining})
        if not self.timed and not self.close_sent and elapsed >= self.duration_s:
            self.close_sent = True
            out.append({"t": "breakout.close"})
        return out

    def overdue(self, now: float, grace_s: float) -> bool:
        """A timed round still open ``grace_s`` after it should have closed."""
        return (
            self.timed
            and self.opened_at is not None
            and not self.closed
            and now - self.opened_at > self.duration_s + grace_s
        )

    def _moves(self, rng: random.Random) -> list[Frame]:
        students = sorted(self.members)
        if len(self.rooms) < 2 or not students:
            return []
        picked = rng.sample(students, min(2, len(students)))
        out: list[Frame] = []
        for n, identity in enumerate(picked):
            others = [r for r in self.rooms if r != self.members[identity]]
            room = rng.choice(others)
            if n == 0:
                out.append({"t": "breakout.move", "identity": identity, "room": room})
            else:
                out.append({"t": "breakout.assign", "members": {identity: room}})
        return out
