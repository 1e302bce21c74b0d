"""Automatic assignment of students to breakout rooms: balanced, random but reproducible, and
keeping given pairs apart and groups together.

:func:`auto_assign` is pure and deterministic: the same arguments (and ``seed``) give the same
assignment, so :func:`rooms.decide` decides it once and the ``breakout.opened`` /
``breakout.assigned`` event records it; nothing is drawn again when the log is replayed.

Balanced means that, counting the members already in each room (``fixed``), the rooms that
receive students end within one of each other: every room ends with ``level - 1`` or ``level``
members, where ``level`` is the smallest size that holds everyone, except rooms that already
held more than ``level`` before (those get nobody). A ``together`` group goes to one room, as a
whole; the two identities of an ``apart`` pair never share a room. The search tries rooms in a
seeded random order and backtracks at most :data:`SEARCH_STEPS_MAX` times, so a request that
cannot be met (a group larger than a room may be, an ``apart`` pair inside a group, more
mutually apart students than rooms) fails quickly with :class:`AssignmentImpossible`.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

SEARCH_STEPS_MAX = 20_000
"""Placement attempts before an assignment is declared impossible (bounds the work of one
command, whatever its constraints)."""


class AssignmentImpossible(ValueError):
    """No balanced assignment keeps the given groups together and pairs apart."""


@dataclass(frozen=True, slots=True)
class _Unit:
    """Students that go to one room together (a ``together`` group, or one student)."""

    members: tuple[str, ...]
    forced: str | None  # the room a fixed member of the group is in


def auto_assign(
    students: Sequence[str],
    rooms: Sequence[str],
    *,
    fixed: Mapping[str, str] | None = None,
    apart: Iterable[Sequence[str]] = (),
    together: Iterable[Sequence[str]] = (),
    seed: str,
) -> dict[str, str]:
    """Assign every identity of ``students`` to one of ``rooms``.

    Args:
        students: the identities to assign (distinct; order does not matter).
        rooms: the room names (distinct, at least one).
        fixed: identities already in a room (they count towards its size; constraints that
            name them are kept: a group with a fixed member goes to that member's room).
        apart: pairs of identities that must be in different rooms.
        together: groups of identities that must share a room (overlapping groups merge).
        seed: the random seed (e.g. the room id and round): the same seed, the same result.

    Returns:
        identity -> room for every identity of ``students``.

    Raises:
        AssignmentImpossible: no balanced assignment keeps the constraints.
    """
    fixed = dict(fixed or {})
    if not rooms:
        raise AssignmentImpossible("there are no rooms to assign to")
    todo = [s for s in dict.fromkeys(students) if s not in fixed]
    units = _units(todo, fixed, together)
    apart_of = _apart_of(apart)
    for unit in units:
        inside = set(unit.members)
        if any(apart_of.get(member, set()) & inside for member in unit.members):
            raise AssignmentImpossible("a pair to keep apart is in a group to keep together")
    sizes = {room: 0 for room in rooms}
    for room in fixed.values():
        if room in sizes:
            sizes[room] += 1
    level = _level(sizes, len(todo))
    rng = random.Random(seed)
    rng.shuffle(units)
    # Groups first (largest first), then the students with constraints: they are the hard part.
    units.sort(key=lambda u: (-len(u.members), -sum(len(apart_of.get(m, ())) for m in u.members)))
    search = _Search(rooms, sizes, level, fixed, apart_of, rng)
    if not search.place(units, len(todo)):
        raise AssignmentImpossible(
            "no balanced assignment keeps these groups together and pairs apart"
        )
    return {member: room for member, room in search.placed.items() if member not in fixed}


def _units(
    todo: Sequence[str], fixed: Mapping[str, str], together: Iterable[Sequence[str]]
) -> list[_Unit]:
    """The students of ``todo`` in units: merged ``together`` groups, and single students."""
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    for group in together:
        members = list(group)
        for other in members[1:]:
            a, b = root(members[0]), root(other)
            if a != b:
                parent[b] = a
    clusters: dict[str, list[str]] = {}
    for identity in (*todo, *fixed):
        clusters.setdefault(root(identity), []).append(identity)
    units = []
    for members in clusters.values():
        free = tuple(m for m in members if m not in fixed)
        forced_rooms = {fixed[m] for m in members if m in fixed}
        if len(forced_rooms) > 1:
            raise AssignmentImpossible("a group to keep together is already in several rooms")
        if free:
            units.append(_Unit(free, next(iter(forced_rooms), None)))
    return units


def _apart_of(apart: Iterable[Sequence[str]]) -> dict[str, set[str]]:
    apart_of: dict[str, set[str]] = {}
    for pair in apart:
        a, b = pair
        if a == b:
            raise AssignmentImpossible(f"{a!r} cannot be kept apart from themself")
        apart_of.setdefault(a, set()).add(b)
        apart_of.setdefault(b, set()).add(a)
    return apart_of


def _level(sizes: Mapping[str, int], count: int) -> int:
    """The smallest size every room may be filled to so that ``count`` more students fit."""
    level = 0
    while sum(max(0, level - size) for size in sizes.values()) < count:
        level += 1
    return level


class _Search:
    """A depth-first search for a placement of units within each room's bounds."""

    def __init__(
        self,
        rooms: Sequence[str],
        sizes: dict[str, int],
        level: int,
        fixed: Mapping[str, str],
        apart_of: Mapping[str, set[str]],
        rng: random.Random,
    ) -> None:
        self.rooms = list(rooms)
        self.sizes = sizes
        self.level = level
        # Rooms below the level must reach level - 1; rooms at or over it take nobody.
        self.floor = {room: level - 1 for room, size in sizes.items() if size < level}
        self.apart_of = apart_of
        self.placed: dict[str, str] = dict(fixed)
        self.rng = rng
        self.steps = 0

    def deficit(self) -> int:
        return sum(max(0, floor - self.sizes[room]) for room, floor in self.floor.items())

    def place(self, units: Sequence[_Unit], remaining: int) -> bool:
        """Place every unit (``remaining`` students in all), backtracking; False when no
        placement exists or the search ran out of steps. Iterative: a class has thousands of
        students, more than Python's recursion limit."""
        frames: list[_Frame] = []
        i = 0
        while True:
            if i == len(frames):
                if i == len(units) and self.deficit() == 0:
                    return True
                if i == len(units) or self.deficit() > remaining:
                    i -= 1
                    if i < 0:
                        return False
                    continue
                frames.append(_Frame(self.candidates(units[i])))
            frame, unit = frames[i], units[i]
            if frame.room is not None:
                self.unplace(unit, frame.room)
                remaining += len(unit.members)
                frame.room = None
            while frame.next < len(frame.rooms):
                room = frame.rooms[frame.next]
                frame.next += 1
                self.steps += 1
                if self.steps > SEARCH_STEPS_MAX:
                    return False
                if self.fits(unit, room):
                    self.put(unit, room)
                    remaining -= len(unit.members)
                    frame.room = room
                    break
            if frame.room is not None:
                i += 1
            else:
                frames.pop()
                i -= 1
                if i < 0:
                    return False

    def candidates(self, unit: _Unit) -> list[str]:
        if unit.forced is not None:
            return [unit.forced]
        rooms = self.rng.sample(self.rooms, k=len(self.rooms))
        # Emptier rooms first keeps the search close to balanced; the shuffle breaks ties.
        rooms.sort(key=lambda room: self.sizes[room])
        return rooms

    def fits(self, unit: _Unit, room: str) -> bool:
        # A group with a member already in ``room`` goes there whatever its size.
        if unit.forced is None and (
            room not in self.floor or self.sizes[room] + len(unit.members) > self.level
        ):
            return False
        return not any(
            self.placed.get(other) == room
            for member in unit.members
            for other in self.apart_of.get(member, ())
        )

    def put(self, unit: _Unit, room: str) -> None:
        for member in unit.members:
            self.placed[member] = room
        self.sizes[room] += len(unit.members)

    def unplace(self, unit: _Unit, room: str) -> None:
        self.sizes[room] -= len(unit.members)
        for member in unit.members:
            del self.placed[member]


@dataclass(slots=True)
class _Frame:
    """One unit's turn in the search: its candidate rooms, the next to try, where it is."""

    rooms: list[str]
    next: int = 0
    room: str | None = None
