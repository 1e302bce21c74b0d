"""Presence: who is online in a room, on this node and others, with changes coalesced per interval.

Presence is not log: it is rebuilt from live connections and every welcome carries the roster.
With several nodes each one announces its own members through the bus and folds in the others'.
Changes are batched and flushed every ``interval`` seconds as one ``presence`` frame per audience
class (staff, students), so a join storm of N students costs O(N) frames, not O(N^2).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rooms import Participant


@dataclass(slots=True)
class PresenceChanges:
    """One flush: who came online, who went offline, and the online count after."""

    joined: list[Participant]
    left: list[Participant]
    online: int


@dataclass(slots=True)
class Presence:
    """Online identities (an identity with several connections, here or on other nodes, counts
    once).

    Args:
        large_room: above this many online, students see only staff in rosters and changes.
    """

    large_room: int
    _connections: dict[str, int] = field(default_factory=dict)
    _online: dict[str, Participant] = field(default_factory=dict)
    _staff: dict[str, Participant] = field(default_factory=dict)
    _joined: dict[str, Participant] = field(default_factory=dict)
    _left: dict[str, Participant] = field(default_factory=dict)
    _count_changed: bool = False
    #: This node's connections per identity, and what to announce to the other nodes.
    _local: dict[str, int] = field(default_factory=dict)
    _announce_joined: dict[str, Participant] = field(default_factory=dict)
    _announce_left: dict[str, Participant] = field(default_factory=dict)
    #: Other nodes' members: node id -> identity -> participant.
    _remote: dict[str, dict[str, Participant]] = field(default_factory=dict)

    @property
    def online(self) -> int:
        return len(self._online)

    @property
    def pending(self) -> bool:
        return bool(self._joined or self._left or self._count_changed)

    def connect(self, p: Participant) -> None:
        """A local connection of ``p`` opened."""
        n = self._local.get(p.identity, 0)
        self._local[p.identity] = n + 1
        if n == 0 and self._announce_left.pop(p.identity, None) is None:
            self._announce_joined[p.identity] = p
        self._add(p)

    def disconnect(self, p: Participant) -> None:
        """A local connection of ``p`` closed."""
        n = self._local.get(p.identity, 0)
        if n <= 1:
            self._local.pop(p.identity, None)
            if self._announce_joined.pop(p.identity, None) is None:
                self._announce_left[p.identity] = p
        else:
            self._local[p.identity] = n - 1
        self._remove(p)

    def remote_update(self, node: str, joined: Sequence[Participant], left: Sequence[str]) -> None:
        """Another node says who joined and left there (idempotent: repeats change nothing)."""
        listed = self._remote.setdefault(node, {})
        for p in joined:
            if p.identity not in listed:
                listed[p.identity] = p
                self._add(p)
        for identity in left:
            gone = listed.pop(identity, None)
            if gone is not None:
                self._remove(gone)
        if not listed:
            del self._remote[node]

    def remote_replace(self, node: str, people: Sequence[Participant]) -> None:
        """All of another node's members, replacing what was known of it."""
        current = self._remote.get(node, {})
        present = {p.identity for p in people}
        self.remote_update(
            node,
            [p for p in people if p.identity not in current],
            [i for i in current if i not in present],
        )

    def take_announcement(self) -> tuple[list[Participant], list[Participant]]:
        """This node's own joins and leaves since the last call (for the other nodes)."""
        joined = list(self._announce_joined.values())
        left = list(self._announce_left.values())
        self._announce_joined.clear()
        self._announce_left.clear()
        return joined, left

    @property
    def announcing(self) -> bool:
        return bool(self._announce_joined or self._announce_left)

    def _add(self, p: Participant) -> None:
        n = self._connections.get(p.identity, 0)
        self._connections[p.identity] = n + 1
        self._online[p.identity] = p
        if p.is_staff:
            self._staff[p.identity] = p
        if n == 0:
            self._count_changed = True
            if self._left.pop(p.identity, None) is None:
                self._joined[p.identity] = p
        elif p.identity in self._joined:
            self._joined[p.identity] = p

    def _remove(self, p: Participant) -> None:
        n = self._connections.get(p.identity, 0)
        if n <= 1:
            self._connections.pop(p.identity, None)
            self._online.pop(p.identity, None)
            self._staff.pop(p.identity, None)
            self._count_changed = True
            if self._joined.pop(p.identity, None) is None:
                self._left[p.identity] = p
        else:
            self._connections[p.identity] = n - 1

    def take_changes(self) -> PresenceChanges:
        changes = PresenceChanges(
            list(self._joined.values()), list(self._left.values()), len(self._online)
        )
        self._joined.clear()
        self._left.clear()
        self._count_changed = False
        return changes

    def students_see_everyone(self) -> bool:
        return len(self._online) <= self.large_room

    def online_with(self, p: Participant) -> int:
        """The online count once ``p`` is connected."""
        return len(self._online) + (p.identity not in self._online)

    def roster_for(self, viewer: Participant, *, joining: bool = False) -> list[dict[str, Any]]:
        """The roster a viewer may see (docs/protocol.md, "Presence"); with ``joining``, the
        viewer is listed too, as it will be once registered."""
        count = self.online_with(viewer) if joining else len(self._online)
        if viewer.is_staff or count <= self.large_room:
            people = self._online
        else:
            people = self._staff  # O(staff), not O(online): a join storm stays O(N)
        roster = [p.to_wire() for p in people.values()]
        if joining and people is self._online and viewer.identity not in people:
            roster.append(viewer.to_wire())
        return roster


def _wire(people: Iterable[Participant], everyone: bool) -> list[dict[str, Any]]:
    return [p.to_wire() for p in people if everyone or p.is_staff]


def presence_frames(changes: PresenceChanges, students_see_everyone: bool) -> dict[str, Any]:
    """The ``presence`` messages for staff and for students (the same map when rooms are small)."""
    staff = {
        "t": "presence",
        "joined": _wire(changes.joined, True),
        "left": [p.identity for p in changes.left],
        "online": changes.online,
    }
    if students_see_everyone:
        return {"staff": staff, "students": staff}
    students = {
        "t": "presence",
        "joined": _wire(changes.joined, False),
        "left": [p.identity for p in changes.left if p.is_staff],
        "online": changes.online,
    }
    return {"staff": staff, "students": students}
