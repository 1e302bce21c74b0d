"""Breakout rooms as one participant's client knows them: the ``breakouts`` of the ``RoomView``
(docs/protocol.md), kept current by the ``breakout.*`` events the client receives and replaced by
each ``welcome`` and ``view`` frame.

Pure: no I/O, no asyncio, no clock of its own (times are passed in), so every rule here is tested
without a server (tests/unit/test_sdk_breakouts.py).

Shapes (docs/protocol.md, "RoomView" and "Breakout rooms"):

- ``RoomView.breakouts``: ``{round, rooms, boards, members: {identity: room}, ends_at: epoch ms |
  nil, warn_s, self_select, cap, help: [{identity, room}], gallery: [{round, room, board}],
  gallery_shared}``. Older servers sent only ``{rooms, members}``: the rest reads as its default.
- A participant's **place** is the breakout room it is in (its name), or the main room (None).
- The countdown: ``breakout.opened{duration_s}`` and ``breakout.timer_set{remaining_s}`` set
  ``ends_at`` to the event's ``ts`` plus those seconds, on the server's clock; a client shows
  ``ends_at`` minus the server's time now (its own clock plus the offset it measured).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: The default warning before the breakout rooms close (s), when a view does not name it.
DEFAULT_WARN_S = 60


@dataclass(slots=True)
class Breakouts:
    """The breakout rooms of the room, as this participant may see them.

    Attributes:
        round: the number of the latest opening (0: never opened).
        rooms: the open breakout rooms, in opening order (empty: none open).
        boards: their whiteboards (``br<round>-<i>``), in the same order.
        members: identity -> breakout room, for everyone in one (absent: the main room).
        ends_at: when the breakout rooms close (server epoch ms), or None without a timer.
        warn_s: how long before ``ends_at`` clients warn (s).
        self_select: students choose their room (``breakout.choose``).
        cap: at most this many students per room when they choose (None: no cap).
        help: the help queue, oldest first, as ``(identity, room)`` (a student sees only its own).
        gallery: the boards of the latest closed round, ``(round, room, board)`` (staff; students
            only while ``gallery_shared``).
        gallery_shared: staff shared the gallery with students.
    """

    round: int = 0
    rooms: list[str] = field(default_factory=list)
    boards: list[str] = field(default_factory=list)
    members: dict[str, str] = field(default_factory=dict)
    ends_at: int | None = None
    warn_s: int = DEFAULT_WARN_S
    self_select: bool = False
    cap: int | None = None
    help: list[tuple[str, str]] = field(default_factory=list)
    gallery: list[tuple[int, str, str]] = field(default_factory=list)
    gallery_shared: bool = False
    #: The last closed round's ``(round, room, board)`` as this client saw it opened, so that a
    #: student can show the gallery when staff share it.
    closed_round: list[tuple[int, str, str]] = field(default_factory=list)

    @classmethod
    def from_view(
        cls, view: Mapping[str, Any] | None, before: Breakouts | None = None
    ) -> Breakouts:
        """The breakout rooms of a ``RoomView.breakouts`` map (None or absent keys: defaults).

        ``before``: what the client knew until this view; a student's view shows no gallery
        until staff share it, so the boards of the round that closed are taken from there.
        """
        view = view or {}
        gallery = [
            (int(g["round"]), str(g["room"]), str(g["board"])) for g in view.get("gallery") or []
        ]
        return cls(
            round=int(view.get("round") or 0),
            rooms=[str(r) for r in view.get("rooms") or []],
            boards=[str(b) for b in view.get("boards") or []],
            members={str(k): str(v) for k, v in (view.get("members") or {}).items()},
            ends_at=None if view.get("ends_at") is None else int(view["ends_at"]),
            warn_s=int(view.get("warn_s", DEFAULT_WARN_S) or 0),
            self_select=bool(view.get("self_select", False)),
            cap=None if view.get("cap") is None else int(view["cap"]),
            help=[(str(h["identity"]), str(h["room"])) for h in view.get("help") or []],
            gallery=gallery,
            gallery_shared=bool(view.get("gallery_shared", False)),
            closed_round=list(gallery) or ([] if before is None else list(before.closed_round)),
        )

    @property
    def open(self) -> bool:
        """Breakout rooms are open."""
        return bool(self.rooms)

    def place_of(self, identity: str) -> str | None:
        """The breakout room ``identity`` is in, or None for the main room."""
        return self.members.get(identity)

    def board_of(self, room: str | None) -> str:
        """The whiteboard of ``room`` (``main`` for the main room, or a room not open)."""
        if room is None or room not in self.rooms or len(self.boards) != len(self.rooms):
            return "main"
        return self.boards[self.rooms.index(room)]

    def remaining_ms(self, server_now_ms: float) -> float | None:
        """Milliseconds until the breakout rooms close (0 once due), None without a timer."""
        if self.ends_at is None or not self.rooms:
            return None
        return max(0.0, self.ends_at - server_now_ms)

    def warning(self, server_now_ms: float) -> bool:
        """True within ``warn_s`` of the close (clients show their warning then)."""
        remaining = self.remaining_ms(server_now_ms)
        return remaining is not None and remaining <= self.warn_s * 1000

    def apply(self, type_: str, data: Mapping[str, Any], ts: int, *, me: str, staff: bool) -> bool:
        """Fold one event into the breakout rooms (the server's rules, as far as a client sees).

        Args:
            type_, data, ts: the event (``ts``: its server time, epoch ms).
            me: this participant's identity. staff: whether it is staff (sees the whole help
                queue and the gallery).

        Returns:
            True when the event was about breakout rooms (or removed someone from one).
        """
        if type_ == "breakout.opened":
            self.round = int(data.get("round") or self.round + 1)
            self.rooms = [str(r) for r in data.get("rooms") or []]
            self.boards = [str(b) for b in data.get("boards") or []]
            self.members = {
                str(k): str(v) for k, v in (data.get("members") or {}).items() if v is not None
            }
            duration = data.get("duration_s")
            self.ends_at = None if duration is None else ts + int(duration) * 1000
            self.warn_s = int(data.get("warn_s", DEFAULT_WARN_S) or 0)
            self.self_select = bool(data.get("self_select", False))
            self.cap = None if data.get("cap") is None else int(data["cap"])
            self.help = []
            self.gallery_shared = False
            if not staff:
                self.gallery = []
        elif type_ == "breakout.assigned":
            for identity, room in (data.get("members") or {}).items():
                self._move(str(identity), None if room is None else str(room))
        elif type_ == "breakout.moved":
            room = data.get("room")
            self._move(str(data["identity"]), None if room is None else str(room))
        elif type_ == "breakout.timer_set":
            remaining = data.get("remaining_s")
            self.ends_at = None if remaining is None else ts + int(remaining) * 1000
        elif type_ == "breakout.closed":
            closed_round = int(data.get("round") or self.round)
            self.closed_round = [
                (closed_round, room, board)
                for room, board in zip(self.rooms, self.boards, strict=False)
            ]
            self.gallery = list(self.closed_round) if staff or self.gallery_shared else []
            self.rooms, self.boards, self.members = [], [], {}
            self.ends_at, self.help = None, []
            self.self_select, self.cap = False, None
        elif type_ == "breakout.help_asked":
            entry = (str(data["identity"]), str(data.get("room") or ""))
            if (staff or entry[0] == me) and all(h[0] != entry[0] for h in self.help):
                self.help.append(entry)
        elif type_ == "breakout.help_cleared":
            self._clear_help(str(data["identity"]))
        elif type_ == "breakout.boards_shared":
            self.gallery_shared = bool(data.get("shared"))
            if not staff:
                self.gallery = list(self.closed_round) if self.gallery_shared else []
        elif type_ == "participant.removed":
            identity = str(data["identity"])
            self.members.pop(identity, None)
            self._clear_help(identity)
        else:
            return False
        return True

    def _move(self, identity: str, room: str | None) -> None:
        if room is None:
            self.members.pop(identity, None)
        else:
            self.members[identity] = room
        self._clear_help(identity)

    def _clear_help(self, identity: str) -> None:
        self.help = [h for h in self.help if h[0] != identity]


def auto_assignment(
    apart: Sequence[Sequence[str]] = (), together: Sequence[Sequence[str]] = ()
) -> dict[str, list[list[str]]]:
    """The ``auto`` field of ``breakout.open`` and ``breakout.assign``: balanced at random,
    keeping each pair of ``apart`` in different rooms and each group of ``together`` in one."""
    return {"apart": [list(p) for p in apart], "together": [list(g) for g in together]}
